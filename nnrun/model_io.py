"""Model files: one `.npz` holding the spec text, the weights and the metadata.

Written atomically (a temporary file in the same folder, then `os.replace`), so a
crash or Ctrl-C mid-write leaves the previous file intact. Read back with
``allow_pickle=False``: a model file can never run code.

Layout of the archive:

    __spec__          the `.net` text the model was trained from (0-d unicode array)
    __meta__          JSON: data set, input shape, class names, epochs done, history …
    w/<layer>/<name>  weights and batch-norm statistics, float32
    opt/<key>         optimizer state (checkpoints only, for --resume)
"""
from __future__ import annotations

import json
import os
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


def output_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be written (a folder, no such folder, no permission), or None.

    Checked before a long run, so a typo costs seconds, not the run. Missing folders
    are not created: a mistyped folder name would otherwise silently become a new one.
    """
    path = Path(path)
    directory = path.parent
    if path.is_dir():
        return f"{path} is a folder; give a file name in it, like {path / 'model.npz'}"
    if not directory.exists():
        return f"no such folder: {directory}"
    if not directory.is_dir():
        return f"{directory} is not a folder"
    try:  # the only reliable test of writability (permissions, read-only file systems, /proc)
        handle, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
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
    The folder must exist (see `output_problem`)."""
    path = Path(path)
    directory = path.parent
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
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


def save_model(path: str | os.PathLike, model: SavedModel) -> None:
    arrays: dict[str, np.ndarray] = {
        "__spec__": np.array(model.spec_text),
        "__meta__": np.array(json.dumps({"format": FORMAT, **model.meta})),
    }
    arrays.update({f"w/{key}": np.ascontiguousarray(value) for key, value in model.weights.items()})
    arrays.update({f"opt/{key}": np.asarray(value) for key, value in model.optimizer_state.items()})
    atomic_write(path, lambda file: np.savez(file, **arrays))


def load_model(path: str | os.PathLike) -> SavedModel:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"no model file at {path}", "train one first: nnrun SPEC --data NAME --save model.npz")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a model file", "give the .npz written by --save")
    not_a_model = ModelFileError(
        f"{path} is not an nnrun model file (expected an .npz written by `nnrun … --save`)",
        "train and save one with: nnrun SPEC --data NAME --save model.npz",
    )
    if not zipfile.is_zipfile(path):  # an .npz is a zip archive of .npy files
        raise not_a_model
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as error:
        if "pickle" in str(error).lower():
            raise ModelFileError(
                f"{path} holds Python objects, which nnrun never loads (they could run code)",
                "use a model file written by `nnrun … --save`",
            ) from None
        raise not_a_model from None
    if "__spec__" not in contents or "__meta__" not in contents:
        raise not_a_model
    try:
        meta = json.loads(str(contents.pop("__meta__")))
    except json.JSONDecodeError:
        raise not_a_model from None
    if meta.pop("format", None) != FORMAT:
        raise not_a_model
    spec_text = str(contents.pop("__spec__"))
    weights = {key[2:]: value for key, value in contents.items() if key.startswith("w/")}
    optimizer_state = {key[4:]: value for key, value in contents.items() if key.startswith("opt/")}
    return SavedModel(spec_text, weights, meta, optimizer_state)
