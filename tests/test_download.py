"""Downloading against a mirror on 127.0.0.1 (never the network): verified by the
SHA-256 of the uncompressed bytes, all or nothing, with progress reports."""
from __future__ import annotations

import functools
import gzip
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from nnrun.data import DataError, load_dataset
from nnrun.data import fetch, lookup
from nnrun.data.idx import idx_bytes
from test_datasets import closed_port_url
from test_idx import write_split_dir

STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output clean
        pass


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A small synthetic 'mnist' served over HTTP on 127.0.0.1, with its sums as the
    published ones; the user cache in tmp_path; no other place holds the set."""
    served = write_split_dir(tmp_path / "served", train=20, test=10, classes=10, size=(28, 28))
    monkeypatch.setitem(fetch.CHECKSUMS, "mnist", {
        path.name.removesuffix(".gz"): fetch.sha256_uncompressed(path) for path in served.iterdir()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    for proxy in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("NNRUN_MIRROR", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("NNRUN_DATA", raising=False)
    monkeypatch.setitem(lookup.SYSTEM_DIRS, "mnist", [])
    yield served
    server.shutdown()
    server.server_close()


def cache_dir(tmp_path):
    return tmp_path / "cache" / "nnrun" / "mnist"


def test_good_download_lands_in_the_cache_and_loads(mirror, tmp_path):
    calls = []
    data = load_dataset("mnist", progress=lambda name, done, total: calls.append((name, done, total)))
    cache = cache_dir(tmp_path)
    assert data.source == str(cache) and data.x_train.shape == (20, 28, 28, 1)
    assert sorted(path.name for path in cache.iterdir()) == sorted(f"{stem}.gz" for stem in STEMS)  # no .part left
    for stem in STEMS:
        assert (cache / f"{stem}.gz").read_bytes() == (mirror / f"{stem}.gz").read_bytes()
        reports = [(done, total) for name, done, total in calls if name == f"{stem}.gz"]
        size = (mirror / f"{stem}.gz").stat().st_size
        assert reports[0] == (0, size) and reports[-1] == (size, size)
    # the second time, the cache answers: no download
    calls.clear()
    assert load_dataset("mnist", progress=lambda *report: calls.append(report)).source == str(cache) and calls == []


def test_a_file_failing_its_checksum_is_refused_and_nothing_is_kept(mirror, tmp_path):
    images = np.zeros((10, 28, 28), dtype=np.uint8)
    images[3, 4, 5] = 1  # one pixel differs from the published file
    (mirror / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist")
    message = excinfo.value.message
    assert "t10k-images-idx3-ubyte.gz" in message and "refused" in message and "SHA-256" in message
    assert fetch.CHECKSUMS["mnist"]["t10k-images-idx3-ubyte"] in message
    assert not (tmp_path / "cache").exists(), "the two files fetched before the bad one must not be kept"


def test_a_truncated_download_is_refused(mirror, tmp_path):
    path = mirror / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset("mnist")
    assert not (tmp_path / "cache").exists()


def test_the_next_mirror_is_tried(mirror, tmp_path, monkeypatch):
    dead = closed_port_url()
    monkeypatch.setenv("NNRUN_MIRROR", f"{dead} {fetch.os.environ['NNRUN_MIRROR']}")
    assert load_dataset("mnist").source == str(cache_dir(tmp_path))


def test_missing_on_every_mirror_lists_each_url(mirror, tmp_path, monkeypatch):
    (mirror / "t10k-labels-idx1-ubyte.gz").unlink()
    dead = closed_port_url()
    live = fetch.os.environ["NNRUN_MIRROR"]
    monkeypatch.setenv("NNRUN_MIRROR", f"{live} {dead}")
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist")
    message = excinfo.value.message
    assert f"{live}t10k-labels-idx1-ubyte.gz: HTTP Error 404" in message
    assert f"{dead}t10k-labels-idx1-ubyte.gz: <urlopen error" in message
    assert not (tmp_path / "cache").exists()


def test_only_missing_files_are_fetched_into_a_partial_cache(mirror, tmp_path):
    cache = cache_dir(tmp_path)
    cache.mkdir(parents=True)
    for stem in STEMS[:3]:
        (cache / f"{stem}.gz").write_bytes((mirror / f"{stem}.gz").read_bytes())
    names = set()
    load_dataset("mnist", progress=lambda name, done, total: names.add(name))
    assert names == {"t10k-labels-idx1-ubyte.gz"}


def test_interrupted_download_leaves_nothing(mirror, tmp_path):
    def interrupt(name, done, total):
        if name == "train-labels-idx1-ubyte.gz":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        load_dataset("mnist", progress=interrupt)
    assert not (tmp_path / "cache").exists()


def test_no_writable_cache(mirror, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.raises(DataError, match="cannot create the cache directory"):
        load_dataset("mnist")
