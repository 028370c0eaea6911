"""Model files: one `.npz` holding the spec text, the weights and the metadata.

Written atomically (a temporary file in the same folder, then `os.replace`), so a
crash or Ctrl-C mid-write leaves the previous file intact. Read back with
``allow_pickle=False``: a model file can never run code.

Layout of the archive:

    __spec__          the `.net` text the model was trained from (0-d unicode array)
    __meta__          JSON: data set, input shape, class names, epochs done, test result …
    __history__       one JSON line per epoch (uint8 bytes): the training history
    w/<layer>/<name>  weights and batch-norm statistics, float32
    opt/<key>         optimizer state (checkpoints only, for --resume)
"""
from __future__ import annotations

import errno
import glob
import json
import math
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import RunError

FORMAT = "nnrun-model-1"


class ModelFileError(RunError):
    """A model file that cannot be used; the message says why and what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, status=2)


@dataclass
class SavedModel:
    spec_text: str
    weights: dict[str, np.ndarray]
    meta: dict
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)
    model: object = field(default=None, compare=False)  # the spec resolved, when read by `load_model` (not saved)


def output_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be written (a folder, no such folder, no permission), or None.

    Checked before a long run, so a typo costs seconds, not the run. Missing folders
    are not created: a mistyped folder name would otherwise silently become a new one.
    """
    if not str(path).strip():
        return "the file name is empty"
    try:
        return _output_problem(Path(os.path.realpath(path)))  # a symlink is written through: its target is replaced
    except OSError as error:  # a name too long for the file system, a loop of links …
        return f"this name cannot be used ({error.strerror or error})"


def _output_problem(path: Path) -> str | None:
    directory = path.parent
    if path.is_dir():
        return f"{path} is a folder; give a file name in it, like {path / 'model.npz'}"
    if path.exists() and not path.is_file():
        return (f"{path} is not a regular file (a device, a FIFO or a socket); nnrun writes its files "
                "whole and moves them into place, so it only replaces regular files")
    if not directory.exists():
        return f"no such folder: {directory}"
    if not directory.is_dir():
        return f"{directory} is not a folder"
    try:  # the only reliable test of writability (permissions, read-only file systems, /proc)
        handle, probe = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp", dir=directory)
    except OSError as error:
        return f"cannot create a file in {directory} ({error.strerror or error})"
    os.close(handle)
    os.unlink(probe)
    if path.exists() and not os.access(path, os.W_OK):
        return f"cannot replace {path}: it is read-only"
    return None


def _file_mode(path: Path) -> int:
    """An existing file keeps its mode; a new one gets the usual 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it into place.

    A symlink is written through (its target is replaced, the link stays); anything but a
    regular file or a new name is refused.  Temporary files left by an earlier save to
    the same name that was killed mid-write are removed first.  The folder must exist
    (see `output_problem`)."""
    path = Path(os.path.realpath(path))
    if path.exists() and not path.is_file():
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    directory = path.parent
    remove_leftovers(path)
    handle, temporary = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp", dir=directory)
    try:
        os.chmod(temporary, _file_mode(path))  # mkstemp makes it private (0o600)
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def strict_json(value, indent: int | None = None) -> str:
    """JSON that every reader accepts: NaN and infinities (a diverged loss) written as null."""
    def finite(item):
        if isinstance(item, float) and not math.isfinite(item):
            return None
        if isinstance(item, dict):
            return {key: finite(entry) for key, entry in item.items()}
        if isinstance(item, (list, tuple)):
            return [finite(entry) for entry in item]
        return item

    return json.dumps(finite(value), indent=indent, allow_nan=False)


def temporary_prefix(path: Path) -> str:
    """``.NAME.``: what the temporary files of saves to ``path`` start with (mkstemp adds 8 random
    characters and ``.tmp``); a long name is cut so that the temporary one still fits 255 bytes."""
    name = path.name if len(path.name.encode()) <= 200 else path.name.encode()[:200].decode(errors="ignore")
    return f".{name}."


def remove_leftovers(path: Path) -> None:
    """Delete the temporary files of saves to ``path`` that never finished (exactly mkstemp's names)."""
    pattern = re.compile(re.escape(temporary_prefix(path)) + r"[a-z0-9_]{8}\.tmp")
    for leftover in path.parent.glob(f"{glob.escape(temporary_prefix(path))}*.tmp"):
        if pattern.fullmatch(leftover.name):
            try:
                leftover.unlink()
            except OSError:
                pass


class History(list):
    """The epoch records of a run, each encoded as a JSON line once, when it is appended, so
    that a checkpoint after every epoch writes the history's bytes without encoding it all
    again (3,000 XOR epochs with --save: 26.8 s when every save re-encoded it)."""

    def __init__(self, records=()) -> None:
        super().__init__()
        self.lines = bytearray()
        for record in records:
            self.append(record)

    def append(self, record: dict) -> None:
        super().append(record)
        self.lines += strict_json(record).encode() + b"\n"


def save_model(path: str | os.PathLike, model: SavedModel) -> None:
    meta = dict(model.meta)
    history = meta.pop("history", [])
    history = history if isinstance(history, History) else History(history)
    arrays: dict[str, np.ndarray] = {
        "__spec__": np.array(model.spec_text),
        "__meta__": np.array(strict_json({"format": FORMAT, **meta})),
        "__history__": np.frombuffer(history.lines, dtype=np.uint8),
    }
    arrays.update({f"w/{key}": np.ascontiguousarray(value) for key, value in model.weights.items()})
    arrays.update({f"opt/{key}": np.asarray(value) for key, value in model.optimizer_state.items()})
    atomic_write(path, lambda file: np.savez(file, **arrays))


def load_model(path: str | os.PathLike) -> SavedModel:
    """Read a model file: only the arrays nnrun writes, each checked before it is read.

    The spec and the metadata come first; the spec's parameter count then bounds what the
    weights and the optimizer state may hold, so a damaged or crafted file costs neither
    time nor memory.  Weights must be finite real numbers; the metadata must have the
    types nnrun writes.
    """
    from nnrun import dsl

    from .limits import read_npz

    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"no model file at {path}", "train one first: nnrun SPEC --data NAME --save model.npz")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file", "give the .npz written by --save")
    not_a_model = ModelFileError(
        f"{path} is not an nnrun model file (expected an .npz written by `nnrun … --save`)",
        "train and save one with: nnrun SPEC --data NAME --save model.npz",
    )
    if path.is_file() and not zipfile.is_zipfile(path):  # an .npz is a zip archive of .npy files
        raise not_a_model
    header = read_npz(path, lambda name: name in ("__spec__", "__meta__", "__history__"), "a model file",
                      ModelFileError, budget=MAX_HEADER_BYTES)
    if "__spec__" not in header or "__meta__" not in header:
        raise not_a_model
    if header["__meta__"].dtype.kind != "U" or header["__spec__"].dtype.kind != "U":
        raise not_a_model
    try:
        meta = json.loads(str(header["__meta__"]))
    except (ValueError, RecursionError):  # not JSON, nested past any sense, numbers of thousands of digits
        raise not_a_model from None
    if not isinstance(meta, dict) or meta.pop("format", None) != FORMAT:
        raise not_a_model
    if "__history__" in header:
        lines = header["__history__"]
        try:
            if lines.dtype != np.uint8 or lines.ndim != 1:
                raise ValueError("not bytes")
            meta["history"] = History(json.loads(line) for line in lines.tobytes().decode().splitlines() if line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise ModelFileError(f"{path}: its training history is damaged", "train and save the model again") from None
    check_meta(meta, path)
    spec_text = str(header["__spec__"])
    try:
        spec = dsl.parse(spec_text, meta.get("spec_file") or str(path))
        model = dsl.resolve(spec, None if spec.input_shape else tuple(meta.get("input_shape") or ()) or None)
    except dsl.SpecError as error:
        raise ModelFileError(f"{path} holds a spec nnrun cannot build ({error.message})",
                             "the file is damaged, or was written by another version; train and save it again") from None
    values = model.total_params * 8 + 4096  # float64 at most, and a little for scalars
    weights = read_npz(path, lambda name: name.startswith("w/"), "a model of this spec", ModelFileError, budget=values)
    state = read_npz(path, lambda name: name.startswith("opt/"), "a model of this spec", ModelFileError, budget=3 * values)
    for key, array in weights.items():
        if array.dtype.kind != "f" or not np.isfinite(array).all():
            kind = "complex" if array.dtype.kind == "c" else array.dtype.name if array.dtype.kind != "f" else "NaN or infinite"
            raise ModelFileError(f"{path}: the weights {key[2:]} hold {kind} values, not finite real numbers",
                                 "the file is damaged, or the run that wrote it diverged; train and save it again")
    for key, array in state.items():
        if key == "opt/iterations":
            valid = array.shape == () and array.dtype.kind in "iu" and int(array) >= 0
        else:
            valid = array.dtype.kind == "f" and bool(np.isfinite(array).all())
        if not valid:
            raise ModelFileError(f"{path}: the optimizer state {key[4:]} is damaged (it must be "
                                 f"{'a whole number ≥ 0' if key == 'opt/iterations' else 'finite real numbers'})",
                                 "train and save the model again, or resume with another optimizer")
    weights = {key[2:]: value for key, value in weights.items()}
    optimizer_state = {key[4:]: value for key, value in state.items()}
    return SavedModel(spec_text, weights, meta, optimizer_state, model)


MAX_HEADER_BYTES = 64 * 2**20  # the spec text and the metadata (a history of many epochs)

META_TYPES = {  # what nnrun writes, key → (check, what it must be)
    "data": (lambda v: isinstance(v, str), "a data set name"),
    "spec_file": (lambda v: isinstance(v, str), "a file name"),
    "task": (lambda v: v in ("classification", "binary", "regression"), "classification, binary or regression"),
    "loss": (lambda v: v in ("cce", "bce", "mse", "mae"), "cce, bce, mse or mae"),
    "seed": (lambda v: type(v) is int and 0 <= v < 2**63, "a whole number ≥ 0"),
    "epochs_done": (lambda v: type(v) is int and v >= 0, "a whole number ≥ 0"),
    "input_shape": (lambda v: isinstance(v, list) and 1 <= len(v) <= 4
                    and all(type(d) is int and 1 <= d <= 100_000_000 for d in v), "a list of 1 to 4 sizes"),
    "class_names": (lambda v: isinstance(v, list) and len(v) <= 100_000 and all(isinstance(n, str) for n in v),
                    "a list of names"),
    "history": (lambda v: isinstance(v, list) and all(_is_record(r) for r in v), "a list of epoch records"),
    "test": (lambda v: v is None or (isinstance(v, dict) and all(_is_number(x) for x in v.values())),
             "the test loss and metric"),
}


def _is_number(value) -> bool:
    return value is None or (type(value) in (int, float))


def _is_record(record) -> bool:
    """An epoch's record as nnrun writes it: its number, a loss, its time and speed, numbers or null."""
    return (isinstance(record, dict) and type(record.get("epoch")) is int and record["epoch"] >= 1
            and all(type(record.get(key)) in (int, float) for key in ("loss", "seconds", "samples_per_second"))
            and all(_is_number(value) for value in record.values()))


def check_meta(meta: dict, path: Path) -> None:
    """Each metadata value nnrun relies on has the type nnrun writes (a crafted file is refused)."""
    for key, (valid, expected) in META_TYPES.items():
        if key in meta and not valid(meta[key]):
            raise ModelFileError(f"{path}: its metadata is damaged: {key} must be {expected}, not {meta[key]!r:.60}",
                                 "train and save the model again")
