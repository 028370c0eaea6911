"""The IDX format of MNIST and Fashion-MNIST, and directories of IDX files.

An IDX file is a big-endian header, then the values in row-major order::

    0x00 0x00  type  ndim      magic: type 0x08 = uint8 … 0x0E = float64
    dim_1 … dim_ndim           ndim unsigned 32-bit sizes
    values                     dim_1 · … · dim_ndim values of the type

MNIST's images have magic 2051 = 0x00000803 (uint8, 3 dims: count, rows,
columns); its labels 2049 = 0x00000801 (uint8, 1 dim: count).  Every way a file
can be wrong — truncated gzip, wrong magic, too short, counts that disagree,
labels out of range — is a `DataError` naming the file.
"""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from .dataset import DataError, Dataset

# type byte → (name, big-endian dtype)
IDX_TYPES = {
    0x08: ("uint8", np.dtype("u1")),
    0x09: ("int8", np.dtype("i1")),
    0x0B: ("int16", np.dtype(">i2")),
    0x0C: ("int32", np.dtype(">i4")),
    0x0D: ("float32", np.dtype(">f4")),
    0x0E: ("float64", np.dtype(">f8")),
}
IMAGES_MAGIC = 0x0803  # 2051
LABELS_MAGIC = 0x0801  # 2049

# The four files of a split directory, by role; each may also end in ".gz".
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
IDX_HINT = "a data directory holds " + ", ".join(IDX_FILES.values()) + " (each may be gzipped, name.gz)"


def describe_magic(magic: int) -> str:
    """``2051 (uint8, 3 dimensions)`` — what a magic number announces."""
    type_name = IDX_TYPES.get((magic >> 8) & 0xFF, ("unknown type",))[0]
    ndim = magic & 0xFF
    return f"{magic} = 0x{magic:08x} ({type_name}, {ndim} dimension{'s' if ndim != 1 else ''})"


def parse_idx(data: bytes, path: Path, expected_magic: int | None = None) -> np.ndarray:
    """Decode IDX bytes.  The type byte may be any IDX type; the number of
    dimensions must match ``expected_magic``'s (3 for images, 1 for labels) when given."""
    expected = describe_magic(expected_magic) if expected_magic else "0x0000TTDD (TT: the type, DD: the dimensions)"
    if len(data) < 4:
        raise DataError(f"{path}: {len(data)} bytes is too short for an IDX header; expected magic {expected}",
                        hint=f"if {path.name} was downloaded, it is truncated: delete it and fetch it again")
    magic = int.from_bytes(data[:4], "big")
    type_code, ndim = data[2], data[3]
    if data[:2] != b"\0\0" or type_code not in IDX_TYPES or ndim == 0:
        raise DataError(f"{path}: not an IDX file: its magic number is {magic} = 0x{magic:08x}; expected {expected}",
                        hint=IDX_HINT)
    if expected_magic and ndim != expected_magic & 0xFF:
        raise DataError(f"{path}: wrong magic number {describe_magic(magic)}; expected {expected}",
                        hint="are the images and labels files swapped? " + IDX_HINT)
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: the file ends inside its header ({len(data)} of {header_size} bytes)",
                        hint=f"the file is truncated; delete {path} and fetch it again")
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = IDX_TYPES[type_code][1]
    promised = math.prod(dims) * dtype.itemsize  # exact: a damaged header may promise more than 2⁶³ bytes
    found = len(data) - header_size
    if found != promised:
        raise size_mismatch(path, dims, type_code, promised, found)
    return np.frombuffer(data, dtype=dtype, offset=header_size).reshape(dims)


def size_mismatch(path: Path, dims, type_code: int, promised: int, found: int) -> DataError:
    shape = "×".join(map(str, dims))
    which = "shorter" if found < promised else "longer"
    return DataError(
        f"{path}: the file is {which} than its header says: {shape} {IDX_TYPES[type_code][0]} "
        f"values = {promised} bytes of data, but it holds {found}",
        hint=f"the file is truncated or damaged; delete {path} and fetch it again",
    )


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX (the inverse of `parse_idx`), e.g. to save your own data."""
    codes = {dtype: code for code, (_, dtype) in IDX_TYPES.items()}
    dtype = np.dtype(array.dtype).newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in codes:
        raise DataError(f"IDX cannot hold {array.dtype} values", hint="use uint8, int8, int16, int32, float32 or float64")
    header = bytes([0, 0, codes[dtype], array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def read_idx(path: str | Path, expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file (plain or ``.gz``) as it is stored (uint8 stays uint8).

    The header is read first; then only as many bytes as it declares, and one more to
    tell a longer file — so a small gzip that unpacks to gigabytes costs nothing, and a
    header that declares more than the memory can hold is refused before reading."""
    from nnrun.limits import check_memory, regular_file

    path = regular_file(path, "an IDX file", DataError)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as file:
            head = file.read(4)
            ndim = head[3] if len(head) == 4 and head[:2] == b"\0\0" else 0
            head += file.read(4 * ndim)
            if len(head) < 4 + 4 * ndim or head[2] not in IDX_TYPES:
                return parse_idx(head, path, expected_magic)  # the header's own error
            dims = [int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
            promised = math.prod(dims) * IDX_TYPES[head[2]][1].itemsize
            if path.suffix != ".gz" and promised != path.stat().st_size - len(head):
                raise size_mismatch(path, dims, head[2], promised, path.stat().st_size - len(head))
            check_memory(promised + 4 * math.prod(dims), f"{path} ({'×'.join(map(str, dims))} values)",
                         "the header declares more than this machine can hold; the file is damaged", DataError)
            values = file.read(promised)
            if len(values) == promised and file.read(1):
                raise DataError(f"{path}: the file is longer than its header says ({promised} bytes of data)",
                                hint=f"the file is damaged; delete {path} and fetch it again")
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(
            f"{path}: the gzip file is truncated or corrupt ({exc})",
            hint=f"delete {path} and fetch it again (`nnrun data fetch NAME`)",
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}", hint="check that the file exists and is readable") from None
    return parse_idx(head + values, path, expected_magic)


def find_idx_files(directory: Path) -> tuple[dict[str, Path], list[str]]:
    """The four files in ``directory`` by role (plain preferred over ``.gz``), and the names missing."""
    found, missing = {}, []
    for role, stem in IDX_FILES.items():
        for candidate in (directory / stem, directory / f"{stem}.gz"):
            if candidate.is_file():
                found[role] = candidate
                break
        else:
            missing.append(stem)
    return found, missing


def images_to_float(images: np.ndarray, grayscale: bool = True) -> np.ndarray:
    """Samples as float32, 8-bit values scaled to [0, 1]; with ``grayscale``, images
    (N, H, W) get a channel axis → (N, H, W, 1).  Vectors (N, F) and (N, H, W, C) keep their shape."""
    x = images.astype(np.float32)  # a copy: the bytes read are immutable
    if images.dtype == np.uint8:
        x /= 255.0
    if grayscale and x.ndim == 3:
        x = x[..., np.newaxis]  # grayscale: one channel, channels-last
    return x


def load_idx_dir(
    directory: Path,
    *,
    name: str | None = None,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
) -> Dataset:
    """Load the train and t10k splits from a directory of IDX files.

    ``num_classes`` (known for named sets) bounds the labels; otherwise it is
    the largest label + 1.
    """
    files, missing = find_idx_files(directory)
    if missing:
        raise DataError(f"{directory}: missing {', '.join(missing)} (or .gz)", hint=IDX_HINT)

    split = {}
    for part in ("train", "test"):
        images_path, labels_path = files[f"{part}_images"], files[f"{part}_labels"]
        images = read_idx(images_path, IMAGES_MAGIC)
        labels = read_idx(labels_path, LABELS_MAGIC)
        if len(images) != len(labels):
            raise DataError(
                f"{labels_path.name} has {len(labels)} labels but {images_path.name} has {len(images)} images "
                f"(in {directory})",
                hint="each image needs exactly one label; the two files must come from the same set",
            )
        if labels.dtype.kind not in "iu":
            raise DataError(f"{labels_path}: labels must be integers, not {labels.dtype}", hint=IDX_HINT)
        split[part] = (images, labels.astype(np.int64), labels_path)

    if split["train"][0].shape[1:] != split["test"][0].shape[1:]:
        raise DataError(
            f"{directory}: train images are {'×'.join(map(str, split['train'][0].shape[1:]))} "
            f"but test images are {'×'.join(map(str, split['test'][0].shape[1:]))}",
            hint="both splits must hold images of one size",
        )

    if num_classes is None:
        from nnrun.limits import MAX_CLASSES

        largest = int(max((labels.max() for _, labels, _ in split.values() if len(labels)), default=-1))
        if largest >= MAX_CLASSES:  # checked before a name is made for every class up to it
            raise DataError(f"{directory}: a label is {largest:,}; nnrun takes at most {MAX_CLASSES:,} classes",
                            hint="the labels file is damaged, or its labels are not class numbers")
        num_classes = largest + 1
    for _, labels, labels_path in split.values():
        bad = labels[(labels < 0) | (labels >= num_classes)]
        if len(bad):
            raise DataError(
                f"{labels_path}: label {int(bad[0])} is out of range: this set has classes 0 to {num_classes - 1}",
                hint=f"delete {labels_path} and fetch it again, or pass the directory as a path",
            )

    x_train, x_test = images_to_float(split["train"][0]), images_to_float(split["test"][0])
    return Dataset(
        name=name or directory.name,
        x_train=x_train,
        y_train=split["train"][1],
        x_test=x_test,
        y_test=split["test"][1],
        task="classification",
        num_classes=num_classes,
        class_names=class_names or [str(c) for c in range(num_classes)],
        input_shape=tuple(x_train.shape[1:]),
        source=str(directory),
    )
