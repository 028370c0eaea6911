"""`load_dataset`: a name or a path → a `Dataset`, and where named sets are found.

MNIST and Fashion-MNIST are looked for, in this order, in

1. ``--data-dir DIR``: ``DIR/<name>/``, then the files directly in ``DIR``;
2. ``$NNRUN_DATA/<name>/``;
3. the user cache, ``$XDG_CACHE_HOME/nnrun/<name>/`` (else ``~/.cache/nnrun/<name>/``);
4. the system directories, ``/usr/share/datasets/<name>/`` (Debian's
   ``dataset-fashion-mnist`` installs Fashion-MNIST there);
5. and finally downloaded into the user cache (see `fetch`).

A place counts when it holds all four IDX files and its two label files have
the set's published SHA-256 (cheap: 70 kB; it tells MNIST from Fashion-MNIST
when files lie directly in ``--data-dir``).  The image files are checked by
their headers and sizes when loaded, and by their sums when downloaded or when
``nnrun data fetch`` runs — hashing 55 MB on every run would cost time.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from .dataset import DataError, Dataset, Task
from .fetch import CHECKSUMS, Progress, download_set, mirrors_for, sha256_uncompressed
from .generated import GENERATORS, XO_SIZE
from .idx import IDX_FILES, find_idx_files, load_idx_dir
from .npz import load_npz


@dataclass(frozen=True)
class NamedSet:
    """What `nnrun data list` shows about a named data set before loading it."""

    name: str
    kind: str  # "generated" or "files"
    input_shape: tuple[int, ...]
    task: Task
    class_names: tuple[str, ...]
    train_size: int
    test_size: int


DIGITS = tuple(str(d) for d in range(10))
FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

NAMED = {
    entry.name: entry
    for entry in (
        NamedSet("mnist", "files", (28, 28, 1), "classification", DIGITS, 60000, 10000),
        NamedSet("fashion-mnist", "files", (28, 28, 1), "classification", FASHION, 60000, 10000),
        NamedSet("xor", "generated", (2,), "binary", ("0", "1"), 256, 4),
        NamedSet("xo", "generated", (XO_SIZE, XO_SIZE, 1), "binary", ("X", "O"), 4000, 1000),
        NamedSet("circles", "generated", (2,), "binary", ("outer", "inner"), 1000, 500),
        NamedSet("spiral", "generated", (2,), "classification", ("0", "1", "2"), 900, 300),
    )
}
ALIASES = {"fashion": "fashion-mnist", "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}

# Where packages install data sets; a table so tests can point it elsewhere.
SYSTEM_DIRS = {
    "mnist": [Path("/usr/share/datasets/mnist")],
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
}


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/nnrun``, else ``~/.cache/nnrun`` (a relative XDG path is ignored, as the spec says)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "nnrun"


def places(name: str, data_dir: str | None = None) -> list[tuple[Path | None, str]]:
    """The directories to look in for set ``name``, in order, each with why it is
    looked at; an unset ``$NNRUN_DATA`` is listed as ``(None, "$NNRUN_DATA is not set")``."""
    found: list[tuple[Path | None, str]] = []
    if data_dir:
        base = Path(data_dir).expanduser()
        found += [(base / name, "--data-dir"), (base, "--data-dir")]
    env = os.environ.get("NNRUN_DATA")
    found.append((Path(env).expanduser() / name, "$NNRUN_DATA") if env else (None, "$NNRUN_DATA is not set"))
    found.append((cache_root() / name, "user cache"))
    found += [(path, "system") for path in SYSTEM_DIRS.get(name, [])]
    return found


def holds_set(name: str, directory: Path) -> str | None:
    """None when ``directory`` holds set ``name``; otherwise why not."""
    if not directory.is_dir():
        return "no such directory"
    files, missing = find_idx_files(directory)
    if len(missing) == len(IDX_FILES):
        return "no IDX files"
    if missing:
        return f"missing {', '.join(missing)}"
    for role in ("train_labels", "test_labels"):
        path = files[role]
        if sha256_uncompressed(path) != CHECKSUMS[name][path.name.removesuffix(".gz")]:
            return f"{path.name} is not {name}'s (SHA-256 differs); to load your own files, pass the directory as --data"
    return None


def locate(name: str, data_dir: str | None = None) -> tuple[Path | None, list[str]]:
    """The first directory that holds set ``name`` (no download), and a note for each place looked."""
    notes = []
    for directory, why in places(name, data_dir):
        if directory is None:
            notes.append(why)
            continue
        problem = holds_set(name, directory)
        if problem is None:
            return directory, notes
        notes.append(f"{directory} ({why}): {problem}")
    return None, notes


def not_found_hint(name: str) -> str:
    hint = (f"put the four IDX files in DIR/{name}/ and set NNRUN_DATA=DIR (or pass --data-dir DIR), "
            f"or run `nnrun data fetch {name}` once online")
    if name == "fashion-mnist":
        hint += "; on Debian: apt-get install dataset-fashion-mnist"
    return hint


def find(name: str, data_dir: str | None = None, *, download: bool = True, progress: Progress | None = None) -> Path:
    """The directory holding set ``name``, downloading it into the user cache if need be."""
    directory, notes = locate(name, data_dir)
    if directory is not None:
        return directory
    looked = f"{name} not found. Looked in:\n  " + "\n  ".join(notes)
    if not download:
        raise DataError(looked + "\n(downloading was not allowed)", hint=not_found_hint(name))
    target = cache_root() / name
    _, missing = find_idx_files(target) if target.is_dir() else ({}, list(IDX_FILES.values()))
    try:
        download_set(name, target, missing, progress)
    except DataError as exc:
        raise DataError(f"{looked}\nthen tried the mirrors {', '.join(mirrors_for(name))}: {exc.message}",
                        hint=not_found_hint(name)) from None
    if (problem := holds_set(name, target)) is not None:
        raise DataError(f"{target}: {problem} after downloading", hint=f"delete {target} and fetch again")
    return target


def canonical_name(name_or_path: str) -> str | None:
    key = name_or_path.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in NAMED else None


def load_dataset(
    name_or_path: str,
    *,
    data_dir: str | None = None,
    seed: int = 0,
    download: bool = True,
    progress: Progress | None = None,
) -> Dataset:
    """Load a named set (``mnist``, ``fashion-mnist``, ``xor``, ``xo``, ``circles``,
    ``spiral``), a sequence set (``sine``, ``adding``, ``words``, ``text:PATH``, a
    folder of class sub-folders of ``.txt`` files) or a path (a directory of IDX
    files, or an ``.npz``).

    Names win over paths: to load a directory called ``mnist``, write ``./mnist``.
    Every failure is a `DataError`.
    """
    if not name_or_path.strip():
        raise DataError("--data is empty", hint="give a data set name (mnist, xo …) or the path of a folder or an .npz")
    name = canonical_name(name_or_path)
    if name in GENERATORS:
        return GENERATORS[name](seed)
    from nnrun.sequences import load_sequence_dataset  # sine, adding, words, text:PATH, class folders

    sequences = load_sequence_dataset(name_or_path, seed=seed)
    if sequences is not None:
        return sequences
    try:
        if name is not None:
            entry = NAMED[name]
            directory = find(name, data_dir, download=download, progress=progress)
            data = load_idx_dir(directory, name=name, num_classes=len(entry.class_names),
                                class_names=list(entry.class_names))
            if data.input_shape != entry.input_shape:
                raise DataError(f"{directory}: images are {'×'.join(map(str, data.input_shape))}, "
                                f"{name}'s are {'×'.join(map(str, entry.input_shape))}",
                                hint=f"delete {directory} and fetch {name} again")
            return data
        return load_path(Path(name_or_path).expanduser())
    except MemoryError:
        raise DataError(f"{name_or_path} does not fit in the memory available",
                        hint="use a smaller data set, or a machine with more memory") from None
    except (OSError, ValueError) as exc:  # a last guard: report, never a traceback
        raise DataError(f"cannot load {name_or_path}: {exc or type(exc).__name__}", hint="check the path and its files") from None


def load_path(path: Path) -> Dataset:
    if path.exists() and not path.is_dir():
        from nnrun.limits import regular_file

        regular_file(path, "a data file (.npz)", DataError)  # a FIFO or a device: refused, named
    if path.is_dir():
        return load_idx_dir(path)
    if path.is_file():
        if path.suffix == ".npz":
            return load_npz(path)
        raise DataError(f"{path} is a file but not an .npz",
                        hint="pass an .npz with x_train, y_train, x_test, y_test, or a directory of IDX files")
    if os.sep in str(path) or path.suffix:
        raise DataError(f"no such file or directory: {path}", hint="check the path")
    raise unknown_name(str(path))


def unknown_name(text: str) -> DataError:
    # difflib's ratio for one slip in an n-letter name is (n−1)/n: 0.5 for 'x0' against 'xo'.
    cutoff = 0.5 if len(text) <= 2 else 0.6
    close = difflib.get_close_matches(text.lower(), list(NAMED) + list(ALIASES) + list(SEQUENCE_SETS), n=1, cutoff=cutoff)
    hint = f"did you mean '{ALIASES.get(close[0], close[0])}'? " if close else ""
    return DataError(f"unknown data set '{text}'",
                     hint=hint + "named sets: " + ", ".join([*NAMED, *SEQUENCE_SETS])
                     + "; or give a path to a directory or .npz")


SEQUENCE_SETS = ("sine", "adding", "words", "text:PATH")
