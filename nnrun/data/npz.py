"""Your own data as an ``.npz`` with ``x_train, y_train, x_test, y_test``.

Read with ``allow_pickle=False``: an object array (which would run code when
unpickled) is refused.  Integer ``y`` → classification with ``num_classes =
max + 1``; float ``y`` → regression.  uint8 ``x`` is scaled by 1/255; a 3-D
``x`` ``(N, H, W)`` gets a channel axis.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nnrun.limits import MAX_CLASSES

from .dataset import DataError, Dataset
from .idx import images_to_float

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
NPZ_HINT = "save it with np.savez(path, x_train=…, y_train=…, x_test=…, y_test=…) from numeric arrays"


def read_npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """The four arrays, each read only after its declared size is checked (`nnrun.limits.read_npz`);
    other arrays in the file are never read."""
    from nnrun.limits import read_npz

    if path.is_file() and not zipfile.is_zipfile(path):
        raise DataError(f"cannot read {path}: it is not an .npz archive", hint="is it an .npz written by np.savez?")
    arrays = read_npz(path, lambda name: name in NPZ_KEYS, "an .npz data set", DataError)
    missing = [key for key in NPZ_KEYS if key not in arrays]
    if missing:
        with zipfile.ZipFile(path) as archive:
            names = [name.removesuffix(".npy") for name in archive.namelist()]
        raise DataError(f"{path}: missing {', '.join(missing)} (it has {', '.join(names) or 'no arrays'})", hint=NPZ_HINT)
    return arrays


def load_npz(path: Path) -> Dataset:
    arrays = read_npz_arrays(path)
    for key, array in arrays.items():
        if array.dtype.kind not in "biuf":
            kind = "complex numbers" if array.dtype.kind == "c" else f"{array.dtype} values"
            raise DataError(f"{path}: {key} holds {kind}, not real numbers", hint=NPZ_HINT)
        if array.ndim == 0:
            raise DataError(f"{path}: {key} is a single number, not one row per sample", hint=NPZ_HINT)
    for key in ("x_train", "x_test"):
        if arrays[key].ndim == 1:  # one number per sample: one feature
            arrays[key] = arrays[key][:, None]
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if len(x) != len(y):
            raise DataError(f"{path}: x_{part} has {len(x)} samples but y_{part} has {len(y)}",
                            hint="each sample needs exactly one target")
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise DataError(f"{path}: x_train samples are {arrays['x_train'].shape[1:]} but x_test's are "
                        f"{arrays['x_test'].shape[1:]}", hint="both splits must have one sample shape")

    # 8-bit (N, H, W) arrays are grayscale images and get a channel axis; other
    # 3-axis arrays are sequences (N, T, F) and keep their shape.
    grayscale = arrays["x_train"].dtype == np.uint8
    x_train = images_to_float(arrays["x_train"], grayscale)
    x_test = images_to_float(arrays["x_test"], grayscale)
    for key, x in (("x_train", x_train), ("x_test", x_test)):
        if not np.isfinite(x).all():
            raise DataError(f"{path}: {key} contains NaN or infinite values", hint="clean the data before training")

    y_train, y_test = arrays["y_train"], arrays["y_test"]
    if y_train.dtype.kind == "f" or y_test.dtype.kind == "f":
        task, num_classes, class_names = "regression", 0, []
        y_train, y_test = y_train.astype(np.float32), y_test.astype(np.float32)
        for key, y in (("y_train", y_train), ("y_test", y_test)):
            if not np.isfinite(y).all():
                raise DataError(f"{path}: {key} contains NaN or infinite values (or values too large for float32)",
                                hint="clean the targets before training: a NaN target makes every loss NaN")
    else:
        task = "classification"
        y_train, y_test = labels_1d(y_train, path, "y_train"), labels_1d(y_test, path, "y_test")
        largest = int(max(y_train.max(initial=-1), y_test.max(initial=-1)))
        if largest < 1:
            raise DataError(f"{path}: every label is {max(largest, 0)}: a classifier needs at least two classes",
                            hint="store class numbers 0, 1, … (or float targets for regression)")
        if largest >= MAX_CLASSES:  # checked before a name is made for every class up to it
            raise DataError(f"{path}: a label is {largest:,}; nnrun takes at most {MAX_CLASSES:,} classes (0 to "
                            f"{MAX_CLASSES - 1:,})", hint="integer targets are class numbers; store float targets for "
                                                          "regression")
        num_classes = largest + 1
        class_names = [str(c) for c in range(num_classes)]

    return Dataset(
        name=path.stem, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
        task=task, num_classes=num_classes, class_names=class_names,
        input_shape=tuple(x_train.shape[1:]), source=str(path),
    )


def labels_1d(y: np.ndarray, path: Path, key: str) -> np.ndarray:
    """Integer labels as int64 ``(N,)``; ``(N, 1)`` is accepted, negatives are not."""
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{path}: {key} has shape {y.shape}; integer labels must be one class index per sample",
                        hint="store class indices (N,), not one-hot rows; or float targets for regression")
    if len(y) and y.dtype.kind == "u" and int(y.max()) >= MAX_CLASSES:  # before int64 wraps it around
        raise DataError(f"{path}: {key} has a label {int(y.max()):,}; nnrun takes at most {MAX_CLASSES:,} classes",
                        hint="integer targets are class numbers; store float targets for regression")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise DataError(f"{path}: {key} has a negative label {int(y.min())}", hint="classes are numbered from 0")
    return y
