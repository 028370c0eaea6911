"""The IDX reader: round trips, and every way a file can be wrong is a DataError
that names the file and says how to fix it."""
from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnrun.data import DataError, load_dataset
from nnrun.data.idx import IDX_FILES, IMAGES_MAGIC, LABELS_MAGIC, idx_bytes, load_idx_dir, parse_idx, read_idx


def write_split_dir(directory, *, train=12, test=6, classes=3, gz=True, size=(5, 4)):
    """A small IDX directory: images whose first pixel is the sample's index, labels i % classes."""
    directory.mkdir(parents=True, exist_ok=True)
    for part, count in (("train", train), ("t10k", test)):
        images = np.zeros((count, *size), dtype=np.uint8)
        images[:, 0, 0] = np.arange(count)
        labels = (np.arange(count) % classes).astype(np.uint8)
        for stem, array in ((f"{part}-images-idx3-ubyte", images), (f"{part}-labels-idx1-ubyte", labels)):
            data = idx_bytes(array)
            if gz:
                (directory / f"{stem}.gz").write_bytes(gzip.compress(data))
            else:
                (directory / stem).write_bytes(data)
    return directory


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from(["u1", "i1", "<i2", ">i4", "<f4", ">f8"]),
    shape=st.lists(st.integers(0, 5), min_size=3, max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_idx_round_trip_of_every_type(dtype, shape, seed):
    array = (np.random.default_rng(seed).normal(size=shape) * 50).astype(dtype)
    decoded = parse_idx(idx_bytes(array), "x", IMAGES_MAGIC)
    assert decoded.shape == array.shape
    assert np.array_equal(decoded, array)


def test_header_layout_is_mnists():
    data = idx_bytes(np.zeros((2, 28, 28), dtype=np.uint8))
    assert data[:16] == bytes.fromhex("00000803" "00000002" "0000001c" "0000001c")
    assert len(data) == 16 + 2 * 28 * 28


@pytest.mark.parametrize("gz", [True, False])
def test_directory_loads_as_classification(tmp_path, gz):
    data = load_idx_dir(write_split_dir(tmp_path / "tiny", gz=gz))
    assert data.name == "tiny"
    assert data.x_train.shape == (12, 5, 4, 1) and data.x_train.dtype == np.float32
    assert data.y_train.dtype == np.int64 and data.y_train.tolist() == [0, 1, 2] * 4
    assert data.num_classes == 3 and data.class_names == ["0", "1", "2"]
    assert data.x_train[11, 0, 0, 0] == pytest.approx(11 / 255)  # uint8 scaled to [0, 1]
    assert data.task == "classification" and data.input_shape == (5, 4, 1)
    assert data.source == str(tmp_path / "tiny")


def test_directory_path_through_load_dataset(tmp_path):
    directory = write_split_dir(tmp_path / "mine")
    assert load_dataset(str(directory)).x_test.shape == (6, 5, 4, 1)


def assert_data_error(excinfo, *fragments):
    text = excinfo.value.render()
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    assert excinfo.value.hint, "every data error carries a hint"


def test_truncated_gzip_names_the_file(tmp_path):
    directory = write_split_dir(tmp_path / "d")
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory)
    assert_data_error(excinfo, "train-images-idx3-ubyte.gz", "truncated or corrupt", "delete")


def test_wrong_magic_says_found_and_expected(tmp_path):
    directory = write_split_dir(tmp_path / "d")
    images = (directory / "t10k-images-idx3-ubyte.gz").read_bytes()
    (directory / "t10k-labels-idx1-ubyte.gz").write_bytes(images)  # images where labels belong
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory)
    assert_data_error(excinfo, "t10k-labels-idx1-ubyte.gz", "wrong magic number 2051", "expected 2049")


def test_garbage_bytes_are_not_an_idx_file(tmp_path):
    directory = write_split_dir(tmp_path / "d", gz=False)
    (directory / "train-labels-idx1-ubyte").write_bytes(b"<html>404 not found</html>")
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory)
    assert_data_error(excinfo, "train-labels-idx1-ubyte", "not an IDX file", "expected 2049")


def test_garbage_in_a_gz_name_is_corrupt_gzip(tmp_path):
    directory = write_split_dir(tmp_path / "d")
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory)
    assert_data_error(excinfo, "train-labels-idx1-ubyte.gz", "truncated or corrupt")


def test_file_shorter_than_its_header_says(tmp_path):
    directory = write_split_dir(tmp_path / "d", gz=False)
    path = directory / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory)
    assert_data_error(excinfo, "train-images-idx3-ubyte", "shorter than its header says", "240 bytes", "233")


def test_a_header_promising_more_than_fits_in_64_bits():
    data = bytes.fromhex("00000803" "ffffffff" "ffffffff" "ffffffff") + b"\0" * 8
    with pytest.raises(DataError, match="shorter than its header says"):
        parse_idx(data, "huge", IMAGES_MAGIC)


def test_file_ending_inside_its_header(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(bytes.fromhex("00000803 0000000a 0000"))
    with pytest.raises(DataError) as excinfo:
        read_idx(path, IMAGES_MAGIC)
    assert_data_error(excinfo, str(path), "ends inside its header")


def test_labels_and_images_of_different_counts(tmp_path):
    directory = write_split_dir(tmp_path / "d")
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(11, np.uint8))))
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory)
    assert_data_error(excinfo, "train-labels-idx1-ubyte.gz has 11 labels", "train-images-idx3-ubyte.gz has 12 images")


def test_missing_file_is_named(tmp_path):
    directory = write_split_dir(tmp_path / "d")
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory)
    assert_data_error(excinfo, "missing t10k-labels-idx1-ubyte", str(directory))
    assert "train-labels" not in excinfo.value.message


def test_labels_out_of_range_for_a_known_set(tmp_path):
    directory = write_split_dir(tmp_path / "d", classes=4)
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory, num_classes=3)
    assert_data_error(excinfo, "train-labels-idx1-ubyte.gz", "label 3 is out of range", "0 to 2")


def test_float_labels_are_refused(tmp_path):
    directory = write_split_dir(tmp_path / "d")
    (directory / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(6, np.float32))))
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory)
    assert_data_error(excinfo, "t10k-labels-idx1-ubyte.gz", "must be integers")


def test_splits_of_different_image_sizes(tmp_path):
    directory = write_split_dir(tmp_path / "d")
    (directory / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((6, 4, 4), np.uint8))))
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory)
    assert_data_error(excinfo, "5×4", "4×4")


def test_unreadable_file(tmp_path):
    directory = write_split_dir(tmp_path / "d")
    path = directory / "train-images-idx3-ubyte.gz"
    path.unlink()
    path.mkdir()  # a directory where a file should be is skipped as missing
    with pytest.raises(DataError) as excinfo:
        load_idx_dir(directory)
    assert_data_error(excinfo, "missing train-images-idx3-ubyte")
    with pytest.raises(DataError) as excinfo:
        read_idx(path, IMAGES_MAGIC)
    assert_data_error(excinfo, f"cannot read {path}")


def test_expected_files_are_the_four_of_mnist():
    assert sorted(IDX_FILES.values()) == sorted([
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
    ])
    assert (IMAGES_MAGIC, LABELS_MAGIC) == (2051, 2049)
