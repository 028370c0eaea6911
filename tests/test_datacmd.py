"""`nnrun data list` and `nnrun data fetch NAME`, rendered into plain-text consoles."""
from __future__ import annotations

from argparse import Namespace
from io import StringIO

import pytest
from rich.console import Console

from nnrun.data import lookup
from nnrun.datacmd import fetch_data, list_data
from test_datasets import SHARED_DATA, closed_port_url, places  # noqa: F401  (fixture)
from test_download import STEMS, cache_dir, mirror  # noqa: F401  (fixture)
from test_idx import write_split_dir


def consoles(width=120):
    return (Console(file=StringIO(), width=width, color_system=None),
            Console(file=StringIO(), width=width, color_system=None))


def text(console):
    return console.file.getvalue()


def test_list_shows_every_set_and_where_it_is(places, monkeypatch):
    monkeypatch.setitem(lookup.SYSTEM_DIRS, "fashion-mnist", [])
    write_split_dir(places["arg"] / "mnist", train=20, test=10, classes=10, size=(28, 28))
    out, err = consoles(width=80)
    assert list_data(Namespace(data_dir=str(places["arg"])), out, err) == 0
    lines = text(out).splitlines()
    rows = {line.split("│")[1].strip(): line for line in lines if line.count("│") > 2}
    names = {"mnist", "fashion-mnist", "xor", "xo", "circles", "spiral", "sine", "adding", "words", "text:FILE", "FOLDER"}
    assert set(rows) == names
    assert "28×28×1" in rows["mnist"] and "60,000/10,000" in rows["mnist"] and "│ 10 " in rows["mnist"]
    assert "generated" in rows["xo"] and "16×16×1" in rows["xo"] and "│ 2 " in rows["xo"]
    assert "│ 3 " in rows["spiral"] and "900/300" in rows["spiral"] and "4,000/1,000" in rows["xo"]
    assert "50×1" in rows["sine"] and "50×2" in rows["adding"] and "12×42" in rows["words"]
    # where: one line a set, the path whole (never folded mid-word), below the table
    where = {line.split()[0]: line for line in lines[lines.index("where") + 1 :]}
    assert set(where) == names
    assert f"  mnist          {places['arg'] / 'mnist'}" in lines
    assert "not found — nnrun data fetch fashion-mnist" in where["fashion-mnist"]
    assert "american-english" in where["words"] or "apt-get install wamerican wfrench" in where["words"]
    assert all(len(line) <= 80 for line in lines[: lines.index("where")])
    assert text(err) == ""


def test_list_says_whether_the_word_lists_are_there(places, monkeypatch, tmp_path):
    import nnrun.datacmd as datacmd

    monkeypatch.setattr(datacmd, "ENGLISH_WORDS", tmp_path / "american-english")
    monkeypatch.setattr(datacmd, "FRENCH_WORDS", tmp_path / "french")
    out, err = consoles(width=80)
    list_data(Namespace(data_dir=None), out, err)
    assert "  words          not found — apt-get install wamerican wfrench" in text(out)
    (tmp_path / "american-english").write_text("cat\n")
    (tmp_path / "french").write_text("chat\n")
    out, err = consoles(width=80)
    list_data(Namespace(data_dir=None), out, err)
    assert f"  words          {tmp_path / 'american-english'} and {tmp_path / 'french'}" in text(out)


def test_paths_under_home_are_written_with_a_tilde(monkeypatch, tmp_path):
    from nnrun.datacmd import home_to_tilde

    monkeypatch.setenv("HOME", str(tmp_path))
    assert home_to_tilde(tmp_path / ".cache" / "nnrun" / "mnist") == "~/.cache/nnrun/mnist"
    assert home_to_tilde("/usr/share/datasets/fashion-mnist") == "/usr/share/datasets/fashion-mnist"


def test_list_at_the_default_width(places):
    out, err = consoles()
    assert list_data(Namespace(data_dir=None), out, err) == 0
    assert "not found — nnrun data fetch mnist" in text(out) and "4,000/1,000" in text(out)


def test_fetch_downloads_with_progress_and_verifies(mirror, tmp_path):
    out, err = consoles()
    assert fetch_data(Namespace(data_dir=None, name="mnist"), out, err) == 0, text(err)
    assert f"mnist: {cache_dir(tmp_path)} (4 files, SHA-256 verified)" in text(out)
    for stem in STEMS:
        assert f"{stem}.gz" in text(out)  # one progress bar per file
    assert sorted(path.name for path in cache_dir(tmp_path).iterdir()) == sorted(f"{stem}.gz" for stem in STEMS)


def test_fetch_finds_the_real_mnist_and_checks_its_sums(monkeypatch, tmp_path):
    if not (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found in {SHARED_DATA}/mnist")
    monkeypatch.setenv("NNRUN_DATA", str(SHARED_DATA))
    monkeypatch.setenv("NNRUN_MIRROR", closed_port_url())
    out, err = consoles()
    assert fetch_data(Namespace(data_dir=None, name="MNIST"), out, err) == 0, text(err)
    assert f"mnist: {SHARED_DATA / 'mnist'} (4 files, SHA-256 verified)" in text(out)


def test_fetch_refuses_local_files_whose_sums_differ(places):
    directory = places["system"] / "mnist"
    write_split_dir(directory, train=20, test=10, classes=10, size=(28, 28))
    (directory / "train-images-idx3-ubyte.gz").write_bytes(
        (directory / "t10k-images-idx3-ubyte.gz").read_bytes())  # labels are right, images are not
    out, err = consoles()
    assert fetch_data(Namespace(data_dir=None, name="mnist"), out, err) == 2
    assert "train-images-idx3-ubyte.gz: SHA-256" in text(err) and "hint: " in text(err)


def test_fetch_offline_lists_the_places_and_exits_2(places):
    out, err = consoles(width=250)
    assert fetch_data(Namespace(data_dir=str(places["arg"]), name="mnist"), out, err) == 2
    assert "error: mnist not found. Looked in:" in text(err)
    assert f"{places['arg'] / 'mnist'} (--data-dir): no such directory" in text(err)
    assert "hint: " in text(err) and "nnrun data fetch mnist" in text(err)


def test_fetch_of_a_generated_or_unknown_set():
    out, err = consoles()
    assert fetch_data(Namespace(data_dir=None, name="spiral"), out, err) == 0
    assert "spiral is generated from a seed: there is nothing to fetch." in text(out)
    out, err = consoles()
    assert fetch_data(Namespace(data_dir=None, name="fashoin-mnist"), out, err) == 2
    assert "error: unknown data set 'fashoin-mnist'" in text(err) and "did you mean 'fashion-mnist'?" in text(err)
