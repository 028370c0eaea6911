"""What an input may cost: memory checked before anything is read or built.

A few hundred bytes of input must never take the machine's memory: an `.npy`
header may declare 10¹⁵ values, a label of 2⁴⁰ would make as many class names,
`/dev/zero` never ends.  Every reader of the program goes through these checks:

* `available_memory`: what this process may still allocate — the smaller of the
  system's available memory and the headroom under an address-space limit
  (``ulimit -v``, `resource.RLIMIT_AS`);
* `check_memory`: refuse, with both numbers, what would not fit;
* `regular_file`: inputs must be regular files (a device, FIFO or socket never
  ends, or ends when someone else decides);
* `read_npz` / `read_npy`: read only the arrays asked for, each only after its
  header's declared size has been checked against the file and the memory.
"""
from __future__ import annotations

import os
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .errors import RunError
from .words import human_bytes

MAX_CLASSES = 100_000  # a class label beyond this is a damaged file, not a data set


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _address_space_headroom() -> int | None:
    """Bytes left under RLIMIT_AS (``ulimit -v``), or None when there is no such limit."""
    try:
        import resource
    except ImportError:  # not on this system
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    used = 0
    try:
        with open("/proc/self/status", encoding="ascii") as file:
            for line in file:
                if line.startswith("VmSize:"):
                    used = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(0, soft - used)


def available_memory() -> int | None:
    """What this process may still allocate, in bytes; None when nothing can tell."""
    known = [value for value in (_meminfo_available(), _address_space_headroom()) if value is not None]
    return min(known) if known else None


def check_memory(needed: int, what: str, hint: str, error: type[RunError] = RunError) -> None:
    """Raise ``error`` when ``needed`` bytes are more than `available_memory`."""
    available = available_memory()
    if available is not None and needed > available:
        raise error(f"{what} needs about {human_bytes(needed)}, but only {human_bytes(available)} of memory is available",
                    hint)


def regular_file(path: str | os.PathLike, what: str, error: type[RunError] = RunError) -> Path:
    """``path`` if it is a regular file (symlinks followed); else ``error`` saying what it is."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"no {what} at {path}", "check the path") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}", "check that the file exists and is readable") from None
    if stat.S_ISDIR(mode):
        raise error(f"cannot read {path}: it is a folder, not {what}", f"give the path of {what}")
    if not stat.S_ISREG(mode):
        kind = ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
                else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "not a regular file")
        raise error(f"{path} is {kind}, not {what}", "give a regular file: nnrun reads inputs whole, and such a "
                                                      "source may never end")
    return path


def _declared(file, where: str, error: type[RunError]) -> tuple[tuple[int, ...], np.dtype, bool]:
    """(shape, dtype, fortran_order) from an .npy header, without reading the values."""
    try:
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
        else:  # (3, 0) exists only for structured arrays with non-latin field names: no numbers nnrun reads
            raise ValueError(f"format version {version[0]}.{version[1]} (structured arrays) is not one nnrun reads")
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, RuntimeError, NotImplementedError,
            zipfile.BadZipFile, zlib.error) as exc:
        raise error(f"{where} is not a readable .npy array ({exc})", "save it with numpy.save") from None
    if not all(type(size) is int and size >= 0 for size in shape):
        raise error(f"{where} declares the shape {shape}, which is not a list of sizes ≥ 0",
                    "the file is damaged or was not written by numpy.save")
    if dtype.hasobject:
        raise error(f"{where} holds Python objects (pickled), which nnrun never loads: unpickling could run code",
                    "save plain numeric arrays with numpy.save")
    return shape, dtype, fortran


def _checked_read(file, shape, dtype, fortran, stored: int, where: str, error: type[RunError]) -> np.ndarray:
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize  # exact, however large the header's numbers
    if declared > stored:
        raise error(f"{where} declares a {'×'.join(map(str, shape)) or 'scalar'} {dtype} array "
                    f"({human_bytes(declared)}) but holds only {human_bytes(stored)} of values",
                    "the file is damaged or was not written by numpy.save")
    count = declared // max(dtype.itemsize, 1)
    # the values, and the float32 copy the program makes of them (uint8 pixels: 4 bytes each)
    check_memory(declared + 4 * count, f"reading {where}", "the file is larger than this machine can hold", error)
    try:
        values = np.frombuffer(file.read(declared), dtype=dtype, count=declared // max(dtype.itemsize, 1))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as exc:
        raise error(f"{where} is damaged or stored in a way nnrun cannot read ({exc})", "save it again") from None
    if values.size * dtype.itemsize != declared:
        raise error(f"{where} ends before its values do", "the file is truncated; save it again")
    array = values.reshape(shape, order="F" if fortran else "C")
    return array.copy() if not array.flags.writeable else array


def read_npy(path: str | os.PathLike, what: str = "an .npy array", error: type[RunError] = RunError) -> np.ndarray:
    """An .npy file, its declared size checked against the file and the memory first."""
    path = regular_file(path, what, error)
    size = path.stat().st_size
    with open(path, "rb") as file:
        shape, dtype, fortran = _declared(file, str(path), error)
        return _checked_read(file, shape, dtype, fortran, size - file.tell(), str(path), error)


def read_npz(path: str | os.PathLike, wanted, what: str, error: type[RunError] = RunError,
             budget: int | None = None) -> dict[str, np.ndarray]:
    """The arrays of an .npz whose names ``wanted(name)`` accepts; the others are never read.

    Each member's header is read first: its declared size must fit in the member and in
    memory (and, all members together, in ``budget`` bytes when given), so neither a lying
    header nor a huge extra array costs anything.
    """
    path = regular_file(path, what, error)
    arrays, total = {}, 0
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if not wanted(name):
                    continue
                with archive.open(info) as file:
                    shape, dtype, fortran = _declared(file, f"{path} ({name})", error)
                    total += int(np.prod(shape, dtype=object)) * dtype.itemsize
                    if budget is not None and total > budget:
                        raise error(f"{path} holds more than {what} can ({human_bytes(total)} of arrays where "
                                    f"{human_bytes(budget)} is the most it needs)",
                                    "the file is damaged or was not written by nnrun")
                    header = file.tell()
                    arrays[name] = _checked_read(file, shape, dtype, fortran, info.file_size - header,
                                                 f"{path} ({name})", error)
    except zipfile.BadZipFile as exc:
        raise error(f"{path} is not a readable .npz archive ({exc})", "write it with numpy.savez") from None
    except (OSError, EOFError, ValueError, zlib.error) as exc:  # a damaged member, a truncated archive
        raise error(f"{path} is damaged: {exc}", "the file is truncated or corrupt; write it again") from None
    except (RuntimeError, NotImplementedError) as exc:  # encrypted members, compression methods zipfile lacks
        raise error(f"{path} is stored in a way nnrun cannot read ({exc})",
                    "write it again with numpy.savez or numpy.savez_compressed") from None
    return arrays
