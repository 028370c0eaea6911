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

FORMAT = "nnrun-model-1"


class ModelFileError(Exception):
    """A model file that cannot be used; the message says why and what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass
class SavedModel:
    spec_text: str
    weights: dict[str, np.ndarray]
    meta: dict
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it into place."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
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
