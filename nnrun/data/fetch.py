"""Downloading MNIST and Fashion-MNIST: mirrors, SHA-256 sums, atomic writes.

Each file is fetched into a temporary file in the target directory and checked
(the SHA-256 of its *uncompressed* bytes must equal the published sum).  Only
when all the missing files of the set have passed are they moved into place with
``os.replace``; on any failure every temporary file is deleted, so the cache
never holds a partial or unverified set.  ``NNRUN_MIRROR`` (one base URL, or
several separated by spaces) replaces the mirror list — the tests point it at
a server on 127.0.0.1.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

from .dataset import DataError

# progress(filename, done_bytes, total_bytes or None when the server does not say)
Progress = Callable[[str, int, "int | None"], None]

TIMEOUT_SECONDS = 30
CHUNK_BYTES = 1 << 16

MIRRORS = {
    "mnist": [
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}

# SHA-256 of the uncompressed IDX files (see shared/data/README.md): the .gz
# bytes differ between mirrors and packagers, the contents do not.
CHECKSUMS = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}


# Bytes of each uncompressed file (the same in both sets: 60,000 and 10,000 28×28 images).
# A download is cut off past what its gzip can hold (a little over these), and its
# contents are read no further than this: a mirror streaming zeros costs nothing.
SIZES = {
    "train-images-idx3-ubyte": 47_040_016,
    "train-labels-idx1-ubyte": 60_008,
    "t10k-images-idx3-ubyte": 7_840_016,
    "t10k-labels-idx1-ubyte": 10_008,
}


def largest_gzip(size: int) -> int:
    """The most bytes a gzip of ``size`` bytes takes: stored blocks add 5 bytes per 64 KiB, plus a header."""
    return size + 5 * (size // 65535 + 1) + 1024


def mirrors_for(name: str) -> list[str]:
    override = os.environ.get("NNRUN_MIRROR", "").split()
    return override or MIRRORS[name]


def sha256_uncompressed(path: Path, gzipped: bool | None = None, limit: int | None = None) -> str:
    """SHA-256 of the file's contents, gunzipped first when it is gzipped (by default: when it ends in ``.gz``);
    with ``limit``, of at most its first ``limit`` + 1 bytes (enough to tell a file that is too long)."""
    digest = hashlib.sha256()
    opener = gzip.open if (path.suffix == ".gz" if gzipped is None else gzipped) else open
    left = None if limit is None else limit + 1
    try:
        with opener(path, "rb") as f:
            while chunk := f.read(1 << 20 if left is None else min(1 << 20, left)):
                digest.update(chunk)
                if left is not None:
                    left -= len(chunk)
                    if left <= 0:
                        break
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: the gzip file is truncated or corrupt ({exc})",
                        hint=f"delete {path} and fetch it again") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


def verify(name: str, files: list[Path]) -> None:
    """Check each file's uncompressed SHA-256 against the published sum for set ``name``."""
    for path in files:
        stem = path.name.removesuffix(".gz")
        expected = CHECKSUMS[name][stem]
        found = sha256_uncompressed(path)
        if found != expected:
            raise DataError(
                f"{path}: SHA-256 {found} does not match {name}'s published {expected}",
                hint=f"the file is damaged or is not {name}'s; delete it and run `nnrun data fetch {name}`",
            )


def download_one(url: str, destination: Path, progress: Progress | None, limit: int | None = None) -> None:
    """GET ``url`` into ``destination`` (an open temporary file's path), reporting progress;
    a `DataError` as soon as it would pass ``limit`` bytes."""
    filename = url.rsplit("/", 1)[-1]
    with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, open(destination, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if limit is not None and total is not None and total > limit:
            raise DataError(f"refused: the server announces {total:,} bytes; the file is at most {limit:,}")
        done = 0
        if progress:
            progress(filename, done, total)
        while chunk := response.read(CHUNK_BYTES):
            done += len(chunk)
            if limit is not None and done > limit:
                raise DataError(f"refused: the download went past {limit:,} bytes, more than the file can be")
            out.write(chunk)
            if progress:
                progress(filename, done, total)


def download_verified(name: str, stem: str, url: str, directory: Path, progress: Progress | None) -> Path:
    """Download ``url`` into a temporary file in ``directory`` and check its sum;
    the temporary file is deleted unless it is returned."""
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{stem}.", suffix=".gz.part")
    os.close(handle)
    temporary = Path(temporary)
    try:
        size = SIZES.get(stem)
        download_one(url, temporary, progress, None if size is None else largest_gzip(size))
        found = sha256_uncompressed(temporary, gzipped=True, limit=size)
        if found != CHECKSUMS[name][stem]:
            raise DataError(f"refused: the SHA-256 of the uncompressed file is {found}, expected {CHECKSUMS[name][stem]}")
    except BaseException:  # Ctrl-C included: never leave a partial file behind
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def download_set(name: str, directory: Path, stems: list[str], progress: Progress | None = None) -> None:
    """Download ``stems`` (e.g. ``train-images-idx3-ubyte``) of set ``name`` as ``.gz``
    files into ``directory``, all or nothing.  Raises `DataError` listing every
    URL tried and why it failed when a file could be had from no mirror."""
    created = [folder for folder in (directory, *directory.parents) if not folder.exists()]  # deepest first
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the cache directory {directory}: {exc.strerror or exc}",
                        hint="set XDG_CACHE_HOME or NNRUN_DATA to a writable directory") from None

    staged: dict[Path, Path] = {}  # final path → verified temporary file
    try:
        for stem in stems:
            failures = []
            for base in mirrors_for(name):
                url = base.rstrip("/") + f"/{stem}.gz"
                try:
                    staged[directory / f"{stem}.gz"] = download_verified(name, stem, url, directory, progress)
                    break
                except (DataError, urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                    failures.append(f"{url}: {exc.message if isinstance(exc, DataError) else exc}")
            else:
                raise DataError(f"could not download {stem}.gz of {name}:\n  " + "\n  ".join(failures),
                                hint=f"check the network, or set NNRUN_MIRROR to a mirror of {name}")
        for final, temporary in staged.items():
            os.replace(temporary, final)  # atomic: the file appears whole or not at all
        staged.clear()
    finally:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
        for folder in created:
            try:
                folder.rmdir()  # only succeeds when empty, i.e. nothing was fetched
            except OSError:
                pass
