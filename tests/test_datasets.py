"""Data sets as a user meets them: the real MNIST and Fashion-MNIST, generated sets,
.npz files, the lookup order of named sets, and labels for each loss."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest

from nnrun.data import NAMED, DataError, labels_for_loss, load_dataset
from nnrun.data import fetch, lookup
from test_idx import write_split_dir

SHARED_DATA = Path(os.environ.get("NNRUN_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# ------------------------------------------------------------------ real data


@pytest.fixture(scope="module")
def mnist():
    if not (SHARED_DATA / "mnist" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found in {SHARED_DATA}/mnist")
    return load_dataset("mnist", data_dir=str(SHARED_DATA), download=False)


def test_mnist_shapes_dtypes_and_range(mnist):
    assert mnist.x_train.shape == (60000, 28, 28, 1) and mnist.x_test.shape == (10000, 28, 28, 1)
    assert mnist.x_train.dtype == np.float32 and mnist.y_train.dtype == np.int64
    assert mnist.x_train.min() == 0.0 and mnist.x_train.max() == 1.0
    assert mnist.task == "classification" and mnist.num_classes == 10
    assert mnist.class_names == [str(d) for d in range(10)] and mnist.input_shape == (28, 28, 1)
    assert mnist.source == str(SHARED_DATA / "mnist")
    assert mnist.y_train[:5].tolist() == [5, 0, 4, 1, 9]  # the famous first five


def test_mnist_per_class_counts_match_the_readme(mnist):
    assert np.bincount(mnist.y_train).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist.y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_fashion_mnist_from_the_system_directory(tmp_path, monkeypatch):
    if not (FASHION_DIR / "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip("dataset-fashion-mnist is not installed")
    monkeypatch.delenv("NNRUN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    data = load_dataset("fashion-mnist", download=False)
    assert data.source == str(FASHION_DIR)
    assert data.x_train.shape == (60000, 28, 28, 1) and data.x_test.shape == (10000, 28, 28, 1)
    assert np.bincount(data.y_train).tolist() == [6000] * 10
    assert np.bincount(data.y_test).tolist() == [1000] * 10
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"


# ------------------------------------------------------------------ generated sets


@pytest.mark.parametrize("name", ["xor", "xo", "circles", "spiral"])
def test_generated_sets_match_the_catalog_and_are_balanced(name):
    data = load_dataset(name, seed=3)
    entry = NAMED[name]
    assert data.source == "generated" and data.task == entry.task
    assert data.x_train.shape == (entry.train_size, *entry.input_shape) and data.x_train.dtype == np.float32
    assert data.x_test.shape == (entry.test_size, *entry.input_shape)
    assert data.class_names == list(entry.class_names) and data.num_classes == len(entry.class_names)
    for y in (data.y_train, data.y_test):
        if data.task == "binary":
            assert y.dtype == np.float32 and y.shape == (len(y), 1) and set(np.unique(y)) == {0.0, 1.0}
        else:
            assert y.dtype == np.int64 and y.shape == (len(y),)
        counts = np.bincount(labels_for_loss(y, "cce", data.num_classes))
        assert len(set(counts.tolist())) == 1, f"classes unbalanced: {counts}"


@pytest.mark.parametrize("name", ["xo", "circles", "spiral"])
def test_generated_sets_are_deterministic_by_seed(name):
    first, again, other = load_dataset(name, seed=7), load_dataset(name, seed=7), load_dataset(name, seed=8)
    assert np.array_equal(first.x_train, again.x_train) and np.array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.x_train, other.x_train)


def test_xor_is_the_truth_table():
    data = load_dataset("xor")
    assert data.x_test.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert data.y_test[:, 0].tolist() == [0, 1, 1, 0]
    for start in range(0, 256 - 4, 7):  # any 4 consecutive training rows hold all four points
        assert len({tuple(row) for row in data.x_train[start:start + 4]}) == 4


def test_xo_images_look_like_x_and_o():
    data = load_dataset("xo")
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    images, is_o = data.x_train[..., 0], data.y_train[:, 0] == 1
    centre = images[:, 7:9, 7:9].mean(axis=(1, 2))  # an X crosses the middle; an O's middle is empty
    assert centre[~is_o].mean() > 0.5 > 0.2 > centre[is_o].mean()


# ------------------------------------------------------------------ .npz files


def test_npz_images_and_integer_labels(tmp_path):
    path = tmp_path / "digits.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (8, 6, 5), dtype=np.uint8), y_train=np.arange(8) % 4,
             x_test=np.full((3, 6, 5), 255, dtype=np.uint8), y_test=np.array([0, 1, 5]))
    data = load_dataset(str(path))
    assert data.name == "digits" and data.source == str(path)
    assert data.x_train.shape == (8, 6, 5, 1) and data.input_shape == (6, 5, 1)
    assert data.x_test.max() == 1.0 and data.x_train.dtype == np.float32
    assert data.task == "classification" and data.num_classes == 6 and data.y_test.dtype == np.int64


def test_npz_float_targets_are_regression(tmp_path):
    path = tmp_path / "r.npz"
    np.savez(path, x_train=np.ones((4, 3)), y_train=np.linspace(0, 1, 4), x_test=np.ones((2, 3)), y_test=np.zeros(2))
    data = load_dataset(str(path))
    assert data.task == "regression" and data.num_classes == 0 and data.class_names == []
    assert data.x_train.shape == (4, 3) and data.y_train.dtype == np.float32


def test_npz_float_sequences_keep_their_shape(tmp_path):
    path = tmp_path / "seq.npz"
    x = np.random.default_rng(0).normal(size=(6, 20, 3)).astype(np.float32)  # (N, T, F), not images
    np.savez(path, x_train=x, y_train=np.arange(6) % 2, x_test=x[:2], y_test=np.array([0, 1]))
    data = load_dataset(str(path))
    assert data.input_shape == (20, 3) and data.x_train.shape == (6, 20, 3)


def test_npz_with_an_object_array_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, x_train=np.array([{"a": 1}, None], dtype=object), y_train=np.zeros(2),
             x_test=np.zeros((1, 2)), y_test=np.zeros(1))
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(path))
    assert "evil.npz" in excinfo.value.message and "pickle" in excinfo.value.render()


def test_npz_missing_arrays_and_mismatched_lengths(tmp_path):
    path = tmp_path / "partial.npz"
    np.savez(path, x_train=np.zeros((2, 2)), y_train=np.zeros(2))
    with pytest.raises(DataError, match="missing x_test, y_test"):
        load_dataset(str(path))
    np.savez(path, x_train=np.zeros((3, 2)), y_train=np.zeros(2), x_test=np.zeros((1, 2)), y_test=np.zeros(1))
    with pytest.raises(DataError, match="x_train has 3 samples but y_train has 2"):
        load_dataset(str(path))


def test_a_file_that_is_not_an_npz(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello")
    with pytest.raises(DataError) as excinfo:
        load_dataset(str(path))
    assert "notes.npz" in excinfo.value.message and excinfo.value.hint


def test_unknown_name_suggests_the_close_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnsit")
    assert "unknown data set 'mnsit'" in excinfo.value.message and "did you mean 'mnist'?" in excinfo.value.hint
    with pytest.raises(DataError, match="no such file or directory"):
        load_dataset("./nowhere/data.npz")


@pytest.mark.parametrize("typed, meant", [("x0", "xo"), ("XO", "xo"), ("xr", "xor"), ("sin", "sine")])
def test_a_one_character_slip_in_a_short_name_is_caught(typed, meant):
    assert f"did you mean '{meant}'?" in lookup.unknown_name(typed).hint


def test_a_short_name_far_from_every_set_gets_no_guess():
    assert "did you mean" not in lookup.unknown_name("qz").hint


# ------------------------------------------------------------------ labels for each loss


def test_labels_for_loss_from_class_indices():
    y = np.array([2, 0, 1])
    assert labels_for_loss(y, "cce", 3).tolist() == [2, 0, 1]
    assert labels_for_loss(y, "mse", 3).tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0]]
    assert labels_for_loss(y, "bce", 3).dtype == np.float32
    with pytest.raises(DataError, match="ends in 1 unit but the data has 3 classes"):
        labels_for_loss(y, "bce", 3, units=1)


def test_labels_for_loss_from_binary_targets():
    y = np.array([[1.0], [0.0]], dtype=np.float32)
    assert labels_for_loss(y, "bce", 2).tolist() == [[1.0], [0.0]]
    assert labels_for_loss(y, "cce", 2).tolist() == [1, 0]
    assert labels_for_loss(y, "mse", 2, units=2).tolist() == [[0, 1], [1, 0]]


def test_labels_for_loss_on_regression_targets():
    y = np.array([0.5, 2.0])
    assert labels_for_loss(y, "mae", 0).tolist() == [[0.5], [2.0]]
    with pytest.raises(DataError, match="needs class labels"):
        labels_for_loss(y, "cce", 0)


# ------------------------------------------------------------------ where named sets are found


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Four places that may hold a small synthetic 'mnist', and the network closed."""
    root = {name: tmp_path / name for name in ("arg", "env", "xdg", "home", "system")}
    monkeypatch.delenv("NNRUN_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(root["home"]))
    monkeypatch.setenv("NNRUN_MIRROR", closed_port_url())
    monkeypatch.setitem(lookup.SYSTEM_DIRS, "mnist", [root["system"] / "mnist"])
    sample = write_split_dir(tmp_path / "sample", train=20, test=10, classes=10, size=(28, 28))
    monkeypatch.setitem(fetch.CHECKSUMS, "mnist", {
        path.name.removesuffix(".gz"): fetch.sha256_uncompressed(path) for path in sample.iterdir()})
    return root


def test_lookup_order_data_dir_then_env_then_cache_then_system(places, monkeypatch):
    monkeypatch.setenv("NNRUN_DATA", str(places["env"]))
    monkeypatch.setenv("XDG_CACHE_HOME", str(places["xdg"]))
    expected = [
        places["arg"] / "mnist", places["env"] / "mnist", places["xdg"] / "nnrun" / "mnist", places["system"] / "mnist",
    ]
    for where in expected:
        write_split_dir(where, train=20, test=10, classes=10, size=(28, 28))
    for where in expected:
        data = load_dataset("mnist", data_dir=str(places["arg"]), download=False)
        assert data.source == str(where)
        assert data.x_train.shape == (20, 28, 28, 1) and data.class_names[3] == "3"
        for path in where.iterdir():
            path.unlink()  # now the next place must be used


def test_files_directly_in_data_dir_and_the_home_cache(places):
    write_split_dir(places["arg"], train=20, test=10, classes=10, size=(28, 28))
    assert load_dataset("mnist", data_dir=str(places["arg"]), download=False).source == str(places["arg"])
    cache = places["home"] / ".cache" / "nnrun" / "mnist"  # XDG_CACHE_HOME unset: ~/.cache
    write_split_dir(cache, train=20, test=10, classes=10, size=(28, 28))
    assert load_dataset("mnist", download=False).source == str(cache)


def test_another_sets_files_are_passed_over(places):
    write_split_dir(places["arg"], train=20, test=10, classes=7, size=(28, 28))  # labels differ from 'mnist'
    write_split_dir(places["system"] / "mnist", train=20, test=10, classes=10, size=(28, 28))
    assert load_dataset("mnist", data_dir=str(places["arg"]), download=False).source == str(places["system"] / "mnist")


def test_offline_error_lists_every_place_and_mirror(places, monkeypatch):
    monkeypatch.setenv("NNRUN_DATA", str(places["env"]))
    (places["env"] / "mnist").mkdir(parents=True)  # exists, but empty
    with pytest.raises(DataError) as excinfo:
        load_dataset("mnist", data_dir=str(places["arg"]))
    message, hint = excinfo.value.message, excinfo.value.hint
    for looked in (places["arg"] / "mnist", places["arg"], places["env"] / "mnist",
                   places["home"] / ".cache" / "nnrun" / "mnist", places["system"] / "mnist"):
        assert f"{looked} (" in message
    assert "no IDX files" in message and os.environ["NNRUN_MIRROR"] in message
    assert "NNRUN_DATA" in hint and "nnrun data fetch mnist" in hint and "--data-dir" in hint
    assert not (places["home"] / ".cache").exists(), "a failed download leaves nothing behind"


def test_no_download_when_not_allowed(places, monkeypatch):
    monkeypatch.setitem(lookup.SYSTEM_DIRS, "fashion-mnist", [places["system"] / "fashion-mnist"])
    with pytest.raises(DataError) as excinfo:
        load_dataset("fashion-mnist", download=False)
    assert "$NNRUN_DATA is not set" in excinfo.value.message and "downloading was not allowed" in excinfo.value.message
    assert "apt-get install dataset-fashion-mnist" in excinfo.value.hint
