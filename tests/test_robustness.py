"""Nothing lost, nothing unsafe (issue 13): each case an adversarial review found, crafted here.

Files a run writes never replace files it reads; what a name points at is written through or
refused; a few bytes of input never take the machine's memory (those cases run in a
subprocess under an address-space limit, and must end within seconds with exit 1 or 2);
no crafted input ends in "internal error".
"""
from __future__ import annotations

import gzip
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_cli
from nnrun import model_io
from nnrun.data import DataError, fetch
from nnrun.data.idx import idx_bytes
from nnrun.model_io import load_model, strict_json
from test_cli_review import XOR, xor_model  # noqa: F401 (a fixture: a small saved model)
from test_recurrent_cli import text_model  # noqa: F401 (a fixture: a small character model)
from test_training_cli import signal_a_long_run


def clean(status: int, out: str, err: str) -> None:
    assert status in (0, 1, 2, 130, 143), status
    assert "internal error" not in err and "Traceback" not in out + err, err


def regression_npz(path: Path, **changes) -> Path:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.normal(size=(40, 2)).astype(np.float32), "y_train": rng.normal(size=(40, 1)).astype(np.float32),
              "x_test": rng.normal(size=(10, 2)).astype(np.float32), "y_test": rng.normal(size=(10, 1)).astype(np.float32)}
    arrays.update(changes)
    np.savez(path, **arrays)
    return path


def limited(gigabytes: float, *argv: str, cwd: Path | None = None, timeout: float = 60) -> tuple[int, str, str, float]:
    """``argv`` in a subprocess whose address space is limited to ``gigabytes``: (status, out, err, seconds)."""
    code = (
        "import resource, sys, runpy\n"
        f"limit = int({gigabytes} * 2**30)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
        "sys.argv = ['nnrun', *sys.argv[1:]]\n"
        "runpy.run_module('nnrun', run_name='__main__')\n"
    )
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True,
                            timeout=timeout, cwd=cwd or ROOT)
    return result.returncode, result.stdout, result.stderr, time.monotonic() - started


# ------------------------------------------------------------------ 1. outputs never replace inputs


CLASHES = {  # the output, the input it lands on, and the arguments (M: a model, R: a checkpoint, D: data, S: the spec)
    "--report onto --save": ("--report", "--save", ["S", "--data", "xor", "--save", "M", "--report", "M"]),
    "--report onto --resume": ("--report", "--resume", ["S", "--data", "xor", "--resume", "R", "--report", "R", "--epochs", "4"]),
    "--save onto --data": ("--save", "--data", ["dense 1", "--data", "D", "--save", "D"]),
    "--save onto the spec": ("--save", "SPEC", ["S", "--data", "xor", "--save", "S"]),
    "--report onto the spec": ("--report", "SPEC", ["S", "--data", "xor", "--report", "S"]),
}


@pytest.mark.parametrize("clash", CLASHES)
def test_an_output_on_top_of_an_input_or_the_other_output_is_refused(clash, tmp_path, xor_model):
    written, read, argv = CLASHES[clash]
    files = {"S": tmp_path / "my.net", "D": regression_npz(tmp_path / "d.npz"), "M": tmp_path / "m.npz",
             "R": tmp_path / "r.npz"}
    files["S"].write_text(XOR)
    files["R"].write_bytes(xor_model.read_bytes())
    before = {path: path.read_bytes() for path in tmp_path.iterdir()}
    status, out, err = run_cli(*[files.get(arg, arg) for arg in argv])
    assert status == 2, err
    assert f"{written} " in err and "is the same file as" in err and read in err.split("is the same file as")[1]
    assert {path: path.read_bytes() for path in tmp_path.iterdir()} == before  # nothing touched


def test_the_same_file_through_a_symlink_is_the_same_file(tmp_path):
    data = regression_npz(tmp_path / "d.npz")
    (tmp_path / "link.npz").symlink_to(data)
    status, _, err = run_cli("dense 1", "--data", data, "--save", tmp_path / "link.npz")
    assert status == 2 and "is the same file as --data" in err


def test_save_onto_resume_continues_the_run(tmp_path):
    model = tmp_path / "m.npz"
    assert run_cli(XOR, "--data", "xor", "--seed", "1", "--save", model)[0] == 0
    status, _, err = run_cli(XOR, "--data", "xor", "--resume", model, "--save", model, "--epochs", "3")
    assert status == 0, err
    assert load_model(model).meta["epochs_done"] == 3


# ------------------------------------------------------------------ 2. what a name points at


def test_a_symlinked_model_is_written_through(tmp_path):
    target = tmp_path / "models" / "real.npz"
    target.parent.mkdir()
    link = tmp_path / "current.npz"
    link.symlink_to(target)
    status, _, err = run_cli(XOR, "--data", "xor", "--save", link)
    assert status == 0, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert load_model(target).meta["epochs_done"] == 2


def test_a_fifo_or_a_device_is_never_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for flag in ("--save", "--report"):
        status, _, err = run_cli(XOR, "--data", "xor", flag, fifo)
        assert status == 2 and "not a regular file" in err, err
        assert fifo.is_fifo()


def test_an_empty_save_name_is_refused(tmp_path):
    status, out, err = run_cli(XOR, "--data", "xor", "--save", "")
    assert status == 2 and "--save '': the file name is empty" in err


def test_leftovers_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    model = tmp_path / "m.npz"
    leftovers = [tmp_path / ".m.npz.abc12345.tmp", tmp_path / ".m.npz.zz_9zz_9.tmp"]  # mkstemp's 8 characters
    for leftover in leftovers:
        leftover.write_bytes(b"half a model")
    others = [tmp_path / ".other.npz.abc12345.tmp", tmp_path / ".m.npz.keepme.tmp"]  # not nnrun's temporary files
    for other in others:
        other.write_bytes(b"someone else's")
    assert run_cli(XOR, "--data", "xor", "--save", model)[0] == 0
    assert not any(leftover.exists() for leftover in leftovers) and all(other.exists() for other in others)


# ------------------------------------------------------------------ 3. a memory budget for every input


def test_a_huge_label_is_refused_before_class_names_are_made(tmp_path):
    data = tmp_path / "label.npz"
    y = np.zeros(40, dtype=np.int64)
    y[3] = 2**40
    np.savez(data, x_train=np.zeros((40, 2), np.float32), y_train=y, x_test=np.zeros((10, 2), np.float32),
             y_test=np.zeros(10, np.int64))
    status, out, err, seconds = limited(2, "dense 2 softmax", "--data", data)
    assert status == 2 and "at most 100,000 classes" in err, err
    assert seconds < 30


def npy_header(shape: tuple[int, ...], dtype: str = "<f4") -> bytes:
    """The header of an .npy file declaring ``shape`` (its values are what follows)."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def with_shape(member: bytes, shape: tuple[int, ...]) -> bytes:
    """An .npy member's bytes with its header replaced by one declaring ``shape``."""
    stream = io.BytesIO(member)
    np.lib.format.read_magic(stream)
    np.lib.format.read_array_header_1_0(stream)
    return npy_header(shape) + member[stream.tell():]


@pytest.fixture
def points(tmp_path) -> Path:
    path = tmp_path / "points.npy"
    np.save(path, np.array([[0, 1], [1, 1]], np.float32))
    return path


def test_an_unknown_array_in_a_model_file_is_never_read(tmp_path, xor_model, points):
    model = tmp_path / "padded.npz"
    model.write_bytes(xor_model.read_bytes())
    with zipfile.ZipFile(model, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        # declares 6 GiB of float32; holds 1 MB of zeros: reading it would fail or exhaust memory
        archive.writestr("extra.npy", npy_header((3 * 2**29,)) + bytes(2**20))
    status, out, err, seconds = limited(2, "predict", model, points)
    assert status == 0, err
    assert out.count("%") >= 2 and seconds < 30


@pytest.mark.parametrize("member", ["w/dense_1/kernel.npy", "opt/m/dense_1/kernel.npy"])
def test_a_model_array_declaring_10_to_the_15_values_is_refused(member, tmp_path, xor_model, points):
    model = tmp_path / "lying.npz"
    with zipfile.ZipFile(xor_model) as source, zipfile.ZipFile(model, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, with_shape(data, (10**15,)) if info.filename == member else data)
    status, out, err, seconds = limited(2, "predict", model, points)
    clean(status, out, err)
    assert status == 2 and ("more than" in err or "holds only" in err), err
    assert seconds < 30


def test_an_npy_declaring_10_to_the_15_values_is_refused(tmp_path, xor_model):
    path = tmp_path / "lying.npy"
    path.write_bytes(npy_header((10**15, 2)) + bytes(64))
    status, out, err, seconds = limited(2, "predict", xor_model, path)
    assert status == 2 and "declares" in err and "holds only" in err, err
    assert seconds < 30


def zeros_gzip(path: Path, header: bytes, zero_bytes: int) -> None:
    """A gzip of ``header`` then ``zero_bytes`` zeros, as members laid end to end (a few MB on disk)."""
    block = gzip.compress(bytes(64 * 2**20), compresslevel=1)
    with open(path, "wb") as file:
        file.write(gzip.compress(header))
        for _ in range(zero_bytes // (64 * 2**20)):
            file.write(block)


def test_a_gzip_is_read_only_as_far_as_its_header_says(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    header = idx_bytes(np.zeros((10, 28, 28), np.uint8))
    zeros_gzip(path, header, 2 * 2**30)  # 2 GiB of zeros after the 7,840 bytes the header declares
    code = f"from nnrun.data.idx import read_idx\nread_idx({str(path)!r}, 0x0803)"
    result = subprocess.run([sys.executable, "-c", "import resource; resource.setrlimit(resource.RLIMIT_AS, "
                             "(2**30, 2**30))\n" + code], capture_output=True, text=True, timeout=60)
    assert "longer than its header says" in result.stderr, result.stderr[-1500:]
    assert "MemoryError" not in result.stderr


@pytest.mark.parametrize("argv", [("predict", "MODEL", "/dev/zero"), ("SPEC", "--data", "text:/dev/zero")])
def test_endless_inputs_are_refused(argv, xor_model):
    argv = [str(xor_model) if arg == "MODEL" else "rnn 4; dense 2 softmax" if arg == "SPEC" else arg for arg in argv]
    status, out, err, seconds = limited(2, *argv, timeout=30)
    assert status == 2 and "character device" in err, err
    assert seconds < 20


class Zeros(BaseHTTPRequestHandler):
    """A mirror that answers every file with 100 MB of zeros and no length."""

    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        chunk = bytes(2**20)
        try:
            for _ in range(100):
                self.wfile.write(chunk)
        except OSError:  # the client hung up: what it should do
            pass

    def log_message(self, format, *args):
        pass


def test_a_download_stops_at_the_size_the_file_can_have(tmp_path, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Zeros)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(proxy, raising=False)
        monkeypatch.setenv("NNRUN_MIRROR", f"http://127.0.0.1:{server.server_port}/")
        with pytest.raises(DataError) as error:
            fetch.download_set("mnist", tmp_path / "cache", ["t10k-labels-idx1-ubyte"])
        assert "went past" in error.value.message
        assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())  # nothing left
    finally:
        server.shutdown()
        server.server_close()


def test_a_network_too_big_for_memory_is_refused_before_it_is_built():
    status, out, err, seconds = limited(3, "input 16x16x1; dense 1000000 relu; dense 2 softmax", "--data", "xo")
    assert status == 2, err
    assert "needs about" in err and "GiB" in err and "available" in err
    assert seconds < 30


def test_the_calculator_shows_the_estimate():
    status, out, _ = run_cli("summary", "input 16x16x1; dense 1000000 relu; dense 2 softmax")
    assert status == 0 and "memory to train" in out and "GiB" in out and "estimate at batch 32, adam" in out
    from nnrun.dsl import parse, resolve
    from nnrun.dsl.memory import training_memory

    small = training_memory(resolve(parse("input 4; dense 2")), 32)
    assert small.weights == 4 * 10 * 2 and small.optimizer == 4 * 10 * 2  # adam: m and v
    assert training_memory(resolve(parse("input 4; dense 2; optimizer sgd")), 32).optimizer == 0


def test_initialisation_draws_the_same_numbers_without_a_float64_copy():
    from nnrun.engine import initializers

    shape = (initializers.CHUNK // 1000 + 7, 1000)  # more than one chunk
    drawn = initializers.glorot_uniform(np.random.default_rng(5), shape)
    limit = np.sqrt(6 / sum(shape))
    assert drawn.dtype == np.float32
    np.testing.assert_array_equal(drawn, np.random.default_rng(5).uniform(-limit, limit, shape).astype(np.float32))


def test_no_throw_away_network_is_built(monkeypatch):
    from nnrun import training

    built = []
    real = training.make_network
    monkeypatch.setattr(training, "make_network", lambda *args, **kwargs: built.append(1) or real(*args, **kwargs))
    assert run_cli(XOR, "--data", "xor")[0] == 0
    assert len(built) == 1


# ------------------------------------------------------------------ 4. no internal error


def test_resuming_with_another_optimizer_drops_its_state_with_a_warning(tmp_path):
    model = tmp_path / "m.npz"
    assert run_cli(XOR, "--data", "xor", "--save", model)[0] == 0
    status, out, err = run_cli(XOR, "--data", "xor", "--resume", model, "--epochs", "3", "--optimizer", "sgd")
    assert status == 0, err
    assert "trained with adam, this run uses plain sgd" in err and "state in the checkpoint is dropped" in err
    changed = XOR.replace("optimizer adam lr 0.05", "optimizer sgd lr 0.1 momentum 0.9")
    status, out, err = run_cli(changed, "--data", "xor", "--resume", model, "--epochs", "3")
    assert status == 0 and "this run uses sgd with momentum" in err, err


@pytest.mark.parametrize("split", ["train", "test"])
def test_a_split_without_samples_is_refused(split, tmp_path):
    data = regression_npz(tmp_path / "d.npz", **{f"x_{split}": np.zeros((0, 2), np.float32),
                                               f"y_{split}": np.zeros((0, 1), np.float32)})
    status, out, err = run_cli("dense 1", "--data", data)
    clean(status, out, err)
    assert status == 2 and f"has no {'training' if split == 'train' else 'test'} samples" in err


def test_a_text_too_short_for_a_test_split_is_refused(tmp_path):
    text = tmp_path / "short.txt"
    text.write_text("a" * 20 + "b" * 21)  # 41 characters: one window of 40
    status, out, err = run_cli("rnn 4; dense 2 softmax", "--data", f"text:{text}")
    clean(status, out, err)
    assert status == 2 and "too few to hold 20% of them out" in err


def test_a_text_folder_too_small_for_a_test_split_is_refused(tmp_path):
    for name, text in (("spam", "win money now"), ("ham", "see you at lunch")):
        (tmp_path / "texts" / name).mkdir(parents=True)
        (tmp_path / "texts" / name / "1.txt").write_text(text)
    status, out, err = run_cli("rnn 4; dense 2 softmax", "--data", tmp_path / "texts")
    clean(status, out, err)
    assert status == 2 and "too few .txt files" in err and "at least 3" in err


def test_metadata_that_is_not_an_object_is_not_a_model(tmp_path, xor_model):
    for meta in ([1, 2], "a string"):
        model = replace_member(xor_model, tmp_path / "m.npz", "__meta__.npy", np.array(json.dumps(meta)))
        status, out, err = run_cli("eval", model, "--data", "xor")
        clean(status, out, err)
        assert status == 2 and "is not an nnrun model file" in err


def test_output_on_a_full_disk_ends_with_a_sentence():
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "nnrun", "summary", "specs/mlp.net"], stdout=full,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "No space left on device" in result.stderr and "Traceback" not in result.stderr


def test_a_damaged_kernel_cache_is_cleared_and_the_run_starts_again(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    command = [sys.executable, "-m", "nnrun", XOR, "--data", "xor", "--epochs", "1"]
    assert subprocess.run(command, env=env, capture_output=True, timeout=300).returncode == 0
    indexes = list((tmp_path / "cache").rglob("*.nbi"))
    assert indexes
    for index in indexes:
        index.write_bytes(index.read_bytes()[:20])  # truncated, as a full disk or a killed process leaves it
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "the cache of compiled kernels was damaged" in result.stderr and "internal error" not in result.stderr
    assert subprocess.run(command, env=env, capture_output=True, text=True, timeout=300).stderr.count("damaged") == 0


def test_a_tiny_temperature_samples_the_most_likely_character(text_model):  # noqa: F811
    status, out, err = run_cli("generate", text_model, "--prompt", "the ", "--length", "5", "--temperature", "1e-308")
    assert status == 0, err
    from nnrun.use import sample

    probabilities = np.array([0.1, 0.7, 0.2], np.float32)
    assert all(sample(probabilities, 1e-308, np.random.default_rng(seed)) == 1 for seed in range(5))


def test_a_corrupt_compressed_model_is_a_model_error(tmp_path, xor_model):
    model = tmp_path / "deflated.npz"
    with zipfile.ZipFile(xor_model) as source, zipfile.ZipFile(model, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    data = bytearray(model.read_bytes())
    with zipfile.ZipFile(model) as archive:
        info = archive.getinfo("w/dense_1/kernel.npy")
    start = info.header_offset + 30 + len(info.filename) + 10
    data[start:start + 16] = bytes(range(200, 216))
    model.write_bytes(bytes(data))
    status, out, err = run_cli("eval", model, "--data", "xor")
    clean(status, out, err)
    assert status == 2 and str(model) in err


def test_a_very_long_generated_sequence_is_refused():
    status, out, err = run_cli("rnn 4; dense 1", "--data", "sine:100000000")
    clean(status, out, err)
    assert status == 2 and "from 2 to 10,000" in err


def replace_member(source: Path, target: Path, member: str, array: np.ndarray) -> Path:
    """A copy of the model file ``source`` at ``target``, with ``member`` holding ``array``."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            new.writestr(info.filename, buffer.getvalue() if info.filename == member else old.read(info))
    return target


def rewrite_meta(source: Path, target: Path, **meta) -> Path:
    with zipfile.ZipFile(source) as archive:
        old = json.loads(str(np.load(io.BytesIO(archive.read("__meta__.npy")))))
    return replace_member(source, target, "__meta__.npy", np.array(json.dumps({**old, **meta})))


@pytest.mark.parametrize("meta", [
    {"seed": "seven"}, {"seed": -1}, {"seed": [1]}, {"input_shape": "2"}, {"input_shape": [0]},
    {"class_names": "ab"}, {"class_names": [0, 1]}, {"test": [1]}, {"task": "magic"}, {"epochs_done": 1.5},
])
def test_crafted_metadata_is_refused(meta, tmp_path, xor_model):
    model = rewrite_meta(xor_model, tmp_path / "crafted.npz", **meta)
    for argv in (("eval", model, "--data", "xor"), (XOR, "--data", "xor", "--resume", model, "--epochs", "4")):
        status, out, err = run_cli(*argv)
        clean(status, out, err)
        assert status == 2 and "metadata is damaged" in err and list(meta)[0] in err, err


def test_a_history_that_is_not_records_is_refused(tmp_path, xor_model):
    model = replace_member(xor_model, tmp_path / "history.npz", "__history__.npy",
                           np.frombuffer(b'["not", "a", "record"]\n', np.uint8))
    status, out, err = run_cli(XOR, "--data", "xor", "--resume", model, "--epochs", "4")
    clean(status, out, err)
    assert status == 2 and "history" in err


def test_optimizer_slots_of_the_wrong_shape_are_refused(tmp_path, xor_model):
    model = tmp_path / "slots.npz"
    saved = load_model(xor_model)
    state = dict(saved.optimizer_state)
    state["m/dense_1/kernel"] = np.zeros((3, 3), np.float32)
    model_io.save_model(model, model_io.SavedModel(saved.spec_text, saved.weights, saved.meta, state))
    status, out, err = run_cli(XOR, "--data", "xor", "--resume", model, "--epochs", "4")
    clean(status, out, err)
    assert status == 2 and "optimizer state" in err


# ------------------------------------------------------------------ 5. no wrong result without a word


@pytest.mark.parametrize("change, named", [
    ("dense 8 relu", "activation tanh in the checkpoint, relu here"),
    ("loss mse", "the loss: bce in the checkpoint, mse here"),
])
def test_resume_compares_the_whole_spec(change, named, tmp_path, xor_model):
    spec = XOR.replace("dense 8 tanh", change) if change.startswith("dense") else XOR.replace("loss bce", change)
    status, out, err = run_cli(spec, "--data", "xor", "--resume", xor_model, "--epochs", "4")
    assert status == 2 and named in err, err


def test_resume_on_another_data_set_is_refused(xor_model):
    status, out, err = run_cli(XOR, "--data", "circles", "--resume", xor_model, "--epochs", "4")
    assert status == 2 and "the data set: xor in the checkpoint, circles in this run" in err


@pytest.mark.parametrize("bad", [np.nan, np.inf, "complex"])
def test_weights_must_be_finite_real_numbers(bad, tmp_path, xor_model):
    saved = load_model(xor_model)
    weights = dict(saved.weights)
    kernel = weights["dense_1/kernel"]
    if bad == "complex":
        weights["dense_1/kernel"] = kernel.astype(np.complex64)
    else:
        weights["dense_1/kernel"] = np.where(np.arange(kernel.size).reshape(kernel.shape) == 3, bad, kernel).astype(np.float32)
    model = tmp_path / "bad.npz"
    model_io.save_model(model, model_io.SavedModel(saved.spec_text, weights, saved.meta, saved.optimizer_state))
    status, out, err = run_cli("eval", model, "--data", "xor")
    clean(status, out, err)
    assert status == 2 and "not finite real numbers" in err and "nan%" not in out


def test_nan_targets_are_refused_not_reported_as_divergence(tmp_path):
    y = np.zeros((40, 1), np.float32)
    y[5] = np.nan
    data = regression_npz(tmp_path / "d.npz", y_train=y)
    status, out, err = run_cli("dense 1", "--data", data)
    assert status == 2 and "y_train contains NaN" in err and "diverged" not in err


def test_reports_are_strict_json():
    text = strict_json({"loss": float("nan"), "history": [{"val_loss": float("inf")}, 1.5]})
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}")) == \
        {"loss": None, "history": [{"val_loss": None}, 1.5]}


def test_a_diverged_run_writes_a_strict_report(tmp_path):
    data = regression_npz(tmp_path / "d.npz")
    report = tmp_path / "run.json"
    status, _, _ = run_cli("dense 1", "--data", data, "--optimizer", "sgd", "--lr", "1e30", "--report", report)
    assert status == 1
    json.loads(report.read_text(), parse_constant=lambda name: pytest.fail(f"bare {name}"))


def test_eval_batch_is_used(monkeypatch, xor_model):
    from nnrun.engine.network import Network

    seen = []
    real = Network.evaluate
    monkeypatch.setattr(Network, "evaluate", lambda self, x, y, batch=1000: seen.append(batch) or real(self, x, y, batch))
    status, out, err = run_cli("eval", xor_model, "--data", "xor", "--batch", "3")
    assert status == 0, err
    assert seen == [3]


def test_sigterm_keeps_the_checkpoint_and_exits_143(tmp_path):
    process, out, err, model = signal_a_long_run(tmp_path, signal.SIGTERM)
    assert process.returncode == 143, err
    assert b"terminated" in err and b"--resume" in err and b"Traceback" not in err + out
    assert load_model(model).meta["epochs_done"] >= 1
    assert not list(tmp_path.glob(".model.npz.*.tmp"))


# ------------------------------------------------------------------ 6. no slowness that grows with the input


def test_each_epoch_record_is_encoded_once(tmp_path, monkeypatch):
    encoded = []
    real = model_io.strict_json
    monkeypatch.setattr(model_io, "strict_json", lambda value, indent=None: encoded.append(real(value, indent)) or encoded[-1])
    epochs = 60
    status, _, err = run_cli("input 2; dense 1 sigmoid; train batch 256", "--data", "xor", "--epochs", epochs,
                             "--save", tmp_path / "m.npz")
    assert status == 0, err
    records = [text for text in encoded if text.startswith('{"epoch"')]
    assert len(records) == epochs  # once each; re-encoding the history every epoch would be 60·61/2
    assert len(load_model(tmp_path / "m.npz").meta["history"]) == epochs


def test_an_embedded_spec_of_200000_lines_is_refused_before_parsing(tmp_path, xor_model):
    saved = load_model(xor_model)
    model = tmp_path / "long.npz"
    long_spec = saved.spec_text + "\n" + "# padding\n" * 200_000
    model_io.save_model(model, model_io.SavedModel(long_spec, saved.weights, saved.meta, saved.optimizer_state))
    started = time.monotonic()
    status, out, err = run_cli("eval", model, "--data", "xor")
    assert status == 2 and "200,00" in err and "lines" in err, err
    assert time.monotonic() - started < 10


# ------------------------------------------------------------------ a second adversarial review


def test_outputs_never_land_in_a_folder_read_as_data(tmp_path, data_dir):
    folder = tmp_path / "digits"
    folder.mkdir()
    for source in (data_dir / "mnist").iterdir():
        (folder / source.name).write_bytes(source.read_bytes())
    before = {path.name: path.stat().st_size for path in folder.iterdir()}
    for flag in ("--save", "--report"):
        status, _, err = run_cli("input 784; dense 10 softmax", "--data", folder, "--epochs", "1",
                                 flag, folder / "train-images-idx3-ubyte.gz")
        assert status == 2 and "the folder the data set is read from" in err, err
    assert {path.name: path.stat().st_size for path in folder.iterdir()} == before


def test_a_data_path_with_a_tilde_is_the_same_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    regression_npz(tmp_path / "d.npz")
    status, _, err = run_cli("dense 1", "--data", "~/d.npz", "--save", tmp_path / "d.npz")
    assert status == 2 and "is the same file as --data" in err


def test_a_named_set_is_not_a_file_beside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "xor").write_text("not data")
    status, _, err = run_cli("input 2; dense 1 sigmoid", "--data", "xor", "--epochs", "1", "--save", "xor")
    assert status == 0, err  # the generated set never reads ./xor


def test_an_idx_label_of_two_billion_is_refused(tmp_path):
    from test_idx import write_split_dir

    folder = write_split_dir(tmp_path / "idx", train=20, test=10, classes=3, size=(4, 4))
    labels = np.zeros(20, dtype=">i4")
    labels[0] = 2**31 - 1
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    (folder / "train-labels-idx1-ubyte").write_bytes(idx_bytes(labels))
    status, out, err, seconds = limited(2, "dense 3 softmax", "--data", folder, "--epochs", "1")
    assert status == 2 and "at most 100,000 classes" in err, err
    assert seconds < 30


def test_a_seed_is_at_most_what_the_spec_allows(tmp_path):
    status, _, err = run_cli(XOR, "--data", "xor", "--seed", str(2**63), "--save", tmp_path / "m.npz")
    assert status == 2 and "from 0 to 4,294,967,295" in err and not (tmp_path / "m.npz").exists()


def test_zip_members_stored_in_ways_zipfile_cannot_read(tmp_path, xor_model, points):
    data = bytearray(xor_model.read_bytes())
    with zipfile.ZipFile(xor_model) as archive:
        offsets = [info.header_offset for info in archive.infolist()]
    for offset in offsets:  # set the "encrypted" flag of every member's local header
        data[offset + 6] |= 1
    central = data.rfind(b"PK\x01\x02", 0)
    while central != -1:  # and in the central directory
        data[central + 8] |= 1
        central = data.rfind(b"PK\x01\x02", 0, central)
    model = tmp_path / "encrypted.npz"
    model.write_bytes(bytes(data))
    status, out, err = run_cli("predict", model, points)
    clean(status, out, err)
    assert status == 2 and "cannot read" in err


@pytest.mark.parametrize("shape", [(-1, -2), (True, 2)])
def test_npy_headers_with_impossible_shapes(shape, tmp_path, xor_model):
    path = tmp_path / "odd.npy"
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape!r}, }}".encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(64))
    status, out, err = run_cli("predict", xor_model, path)
    clean(status, out, err)
    assert status == 2 and "not a list of sizes" in err


def test_metadata_nested_past_sense_is_not_a_model(tmp_path, xor_model):
    model = replace_member(xor_model, tmp_path / "deep.npz", "__meta__.npy", np.array("[" * 100_000 + "]" * 100_000))
    status, out, err = run_cli("eval", model, "--data", "xor")
    clean(status, out, err)
    assert status == 2 and "is not an nnrun model file" in err


@pytest.mark.parametrize("record", [{"epoch": 1}, {"epoch": 1, "loss": None, "seconds": 1, "samples_per_second": 1}])
def test_history_records_must_be_whole(record, tmp_path, xor_model):
    model = replace_member(xor_model, tmp_path / "h.npz", "__history__.npy",
                           np.frombuffer((json.dumps(record) + "\n").encode(), np.uint8))
    status, out, err = run_cli(XOR, "--data", "xor", "--resume", model, "--epochs", "4")
    clean(status, out, err)
    assert status == 2 and "history" in err


def test_a_negative_optimizer_step_count_is_refused(tmp_path, xor_model):
    saved = load_model(xor_model)
    model = tmp_path / "steps.npz"
    state = {**saved.optimizer_state, "iterations": np.array(-5, dtype=np.int64)}
    model_io.save_model(model, model_io.SavedModel(saved.spec_text, saved.weights, saved.meta, state))
    status, out, err = run_cli(XOR, "--data", "xor", "--resume", model, "--epochs", "4")
    clean(status, out, err)
    assert status == 2 and "optimizer state iterations is damaged" in err


def test_help_to_a_full_disk_is_one_sentence():
    with open("/dev/full", "w") as full:
        result = subprocess.run([sys.executable, "-m", "nnrun", "--help"], stdout=full, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 1 and "No space left on device" in result.stderr and "Traceback" not in result.stderr


def test_data_that_is_empty_or_a_fifo(tmp_path):
    status, _, err = run_cli("dense 1", "--data", "")
    assert status == 2 and "--data is empty" in err
    os.mkfifo(tmp_path / "pipe.npz")
    status, _, err = run_cli("dense 1", "--data", tmp_path / "pipe.npz")
    assert status == 2 and "is a FIFO (named pipe)" in err


def test_long_save_names(tmp_path):
    fits = tmp_path / ("a" * 250 + ".npz")
    status, _, err = run_cli(XOR, "--data", "xor", "--epochs", "1", "--save", fits)
    assert status == 0 and fits.exists(), err
    status, out, err = run_cli(XOR, "--data", "xor", "--epochs", "1", "--save", tmp_path / ("a" * 300 + ".npz"))
    clean(status, out, err)
    assert status == 2 and "this name cannot be used (File name too long)" in err


def test_a_text_of_too_many_characters_is_refused(tmp_path):
    text = tmp_path / "many.txt"
    text.write_text("".join(chr(0x4E00 + i) for i in range(10_001)) * 2, encoding="utf-8")
    status, out, err = run_cli("rnn 4; dense 10001 softmax", "--data", f"text:{text}")
    clean(status, out, err)
    assert status == 2 and "10,001 distinct characters" in err


def test_npz_labels_and_samples_of_unusual_shapes(tmp_path):
    big = regression_npz(tmp_path / "big.npz", y_train=np.full(40, 2**63, dtype=np.uint64), y_test=np.zeros(10, np.uint64))
    status, _, err = run_cli("dense 2 softmax", "--data", big)
    assert status == 2 and "at most 100,000 classes" in err and "negative" not in err
    one = regression_npz(tmp_path / "one.npz", y_train=np.zeros(40, np.int64), y_test=np.zeros(10, np.int64))
    status, _, err = run_cli("dense 2 softmax", "--data", one)
    assert status == 2 and "at least two classes" in err
    flat = regression_npz(tmp_path / "flat.npz", x_train=np.arange(40, dtype=np.float32), x_test=np.zeros(10, np.float32))
    status, out, err = run_cli("dense 1", "--data", flat, "--epochs", "1")
    assert status == 0 and "input       1 → 1" in out, err


def test_predict_inputs_of_odd_kinds(tmp_path, xor_model):
    np.save(tmp_path / "one.npy", np.float32(3))
    status, _, err = run_cli("predict", xor_model, tmp_path / "one.npy")
    assert status == 2 and "holds a single number" in err
    np.save(tmp_path / "complex.npy", np.ones((2, 2), np.complex64))
    status, _, err = run_cli("predict", xor_model, tmp_path / "complex.npy")
    assert status == 2 and "complex numbers, not real numbers" in err
    np.save(tmp_path / "points.npy", np.array([[0, 1]], np.float32))
    (tmp_path / "points.npy").rename(tmp_path / "POINTS.NPY")
    status, out, err = run_cli("predict", xor_model, tmp_path / "POINTS.NPY")
    assert status == 0 and "%" in out, err


def test_a_text_model_is_not_evaluated_on_another_alphabet(text_model, tmp_path):  # noqa: F811
    other = tmp_path / "other.txt"
    other.write_text("0123456789 " * 20)
    status, out, err = run_cli("eval", text_model, "--data", f"text:{other}")
    clean(status, out, err)
    assert status == 2 and "the model's classes are not" in err


def test_eval_uses_the_training_runs_split_of_a_text(tmp_path):
    from test_recurrent_cli import TINY_TEXT

    corpus = tmp_path / "tiny.txt"
    corpus.write_text(TINY_TEXT * 3, encoding="utf-8")
    model, report = tmp_path / "m.npz", tmp_path / "r.json"
    classes = len(set(TINY_TEXT))
    status, _, err = run_cli(f"rnn 8; dense {classes} softmax", "--data", f"text:{corpus}", "--epochs", "1",
                             "--seed", "5", "--save", model, "--report", report)
    assert status == 0, err
    trained = json.loads(report.read_text())["test"]["accuracy"]
    status, out, err = run_cli("eval", model, "--data", f"text:{corpus}")
    assert status == 0, err
    assert f"accuracy {trained:.2%}" in out  # the same test windows as the run's (seed 5, not 0)
