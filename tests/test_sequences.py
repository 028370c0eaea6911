"""Sequence data sets: shapes, seeds, balance, the adding problem's baseline, and the errors."""
from __future__ import annotations

import numpy as np
import pytest

from nnrun.data.dataset import DataError
from nnrun.sequences import (
    ENGLISH_WORDS,
    FRENCH_WORDS,
    WORD_ALPHABET,
    load_sequence_dataset,
    make_spam_folder,
    one_hot_text,
    words,
)


def assert_same(a, b):
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def assert_consistent(data):
    assert data.x_train.dtype == np.float32 and data.x_test.dtype == np.float32
    assert data.x_train.shape[1:] == data.input_shape == data.x_test.shape[1:]
    assert len(data.x_train) == len(data.y_train) and len(data.x_test) == len(data.y_test)


# ------------------------------------------------------------------ generated


def test_sine_shapes_seed_and_noise():
    data = load_sequence_dataset("sine", seed=1)
    assert_consistent(data)
    assert data.input_shape == (50, 1) and data.y_train.shape == (2000, 1) and data.task == "regression"
    assert_same(data, load_sequence_dataset("sine", seed=1))
    assert not np.array_equal(data.x_train, load_sequence_dataset("sine", seed=2).x_train)
    assert load_sequence_dataset("sine:20").input_shape == (20, 1)
    assert load_sequence_dataset("sine", length=30).input_shape == (30, 1)
    # a smooth wave plus σ = 0.05 noise: second differences are mostly noise, var ≈ 6σ²
    second = np.diff(data.x_train[:, :, 0], n=2, axis=1)
    assert 0.8 * 6 * 0.05**2 < second.var() < 6 * 0.05**2 + 0.02


def test_adding_problem_mean_prediction_mse():
    data = load_sequence_dataset("adding", seed=0)
    assert_consistent(data)
    assert data.input_shape == (50, 2) and data.y_train.shape == (5000, 1)
    markers = data.x_train[:, :, 1]
    assert np.all(markers.sum(axis=1) == 2) and set(np.unique(markers)) == {0.0, 1.0}
    np.testing.assert_allclose(data.y_train[:, 0], (data.x_train[:, :, 0] * markers).sum(axis=1), rtol=1e-6)
    mse = float(np.mean((data.y_test - data.y_train.mean()) ** 2))
    assert abs(mse - 1 / 6) < 0.02
    assert_same(data, load_sequence_dataset("adding", seed=0))
    assert load_sequence_dataset("adding:100").input_shape == (100, 2)


@pytest.mark.parametrize("name", ["adding:abc", "adding:1", "sine:-3"])
def test_bad_length_suffix(name):
    with pytest.raises(DataError, match="whole number"):
        load_sequence_dataset(name)


def test_unknown_names_are_left_to_others(tmp_path):
    assert load_sequence_dataset("mnist") is None
    assert load_sequence_dataset(str(tmp_path)) is None  # an empty directory: maybe IDX files
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"")
    assert load_sequence_dataset(str(tmp_path)) is None


# ------------------------------------------------------------------ words


@pytest.fixture(scope="module")
def word_data():
    return words(seed=0)


def test_words_balanced_and_encoded(word_data):
    assert_consistent(word_data)
    assert word_data.task == "binary" and word_data.class_names == ["English", "French"]
    assert word_data.input_shape == (12, len(WORD_ALPHABET))
    for y in (word_data.y_train, word_data.y_test):
        assert y.shape[1] == 1 and y.mean() == 0.5  # exactly balanced in each split
    rows = word_data.x_train.sum(axis=2)  # one letter per step, or a zero row of padding
    assert set(np.unique(rows)) == {0.0, 1.0}
    assert np.all(rows[:, -1] == 1.0)  # padded before the word: the last step is its last letter
    assert np.all(np.diff(rows, axis=1) >= 0)  # no gap inside a word
    accents = word_data.x_train[:, :, 26:].sum(axis=(1, 2))
    french = word_data.y_train[:, 0] == 1
    assert accents[french].mean() > 5 * accents[~french].mean()  # the accented letters are used


def test_words_seeded(word_data):
    assert_same(word_data, words(seed=0))


def test_words_drop_shared_long_and_foreign_words(tmp_path):
    english, french = tmp_path / "en", tmp_path / "fr"
    english.write_text("Cat\ndog\nsupercalifragilistic\ntable\nhouse's\nbird\n", encoding="utf-8")
    french.write_text("chat\nchien\ntable\nÉlève\nmaison\nñandú\n", encoding="utf-8")
    data = words(seed=0, english=english, french=french)
    # English keeps cat, dog, bird (table is shared, house's has an apostrophe, one is too long);
    # French keeps chat, chien, élève, maison (ñ is not in the alphabet) → 3 per class
    assert len(data.y_train) + len(data.y_test) == 6
    all_x = np.concatenate([data.x_train, data.x_test])
    spelled = {"".join(WORD_ALPHABET[np.argmax(step)] for step in x if step.any()) for x in all_x}
    assert "table" not in spelled and "cat" in spelled
    assert len(spelled & {"chat", "chien", "élève", "maison"}) == 3


def test_words_missing_list(tmp_path):
    with pytest.raises(DataError) as error:
        words(english=tmp_path / "american-english", french=FRENCH_WORDS)
    assert "american-english" in error.value.message and "apt-get install wamerican wfrench" in error.value.hint


def test_default_word_lists_are_debians():
    assert str(ENGLISH_WORDS) == "/usr/share/dict/american-english" and str(FRENCH_WORDS) == "/usr/share/dict/french"


# ------------------------------------------------------------------ text files


def test_text_file_next_character(tmp_path):
    path = tmp_path / "poem.txt"
    text = "le vent se lève, il faut tenter de vivre! " * 30
    path.write_text(text, encoding="utf-8")
    data = load_sequence_dataset(f"text:{path}", length=10, seed=3)
    assert_consistent(data)
    assert data.class_names == sorted(set(text)) and data.num_classes == len(set(text))
    assert data.input_shape == (10, len(set(text))) and data.task == "classification"
    assert data.y_train.dtype == np.int64
    total = len(data.y_train) + len(data.y_test)
    assert total == len(text) - 10 and abs(len(data.y_test) / total - 0.2) < 0.01
    for x, y in zip(data.x_train[:20], data.y_train[:20]):  # each target follows its window in the text
        window = "".join(data.class_names[i] for i in x.argmax(axis=1))
        assert window + data.class_names[y] in text
    assert_same(data, load_sequence_dataset(f"text:{path}", length=10, seed=3))


def test_text_file_windows_are_capped(tmp_path, monkeypatch):
    import nnrun.sequences as sequences

    monkeypatch.setattr(sequences, "TEXT_MAX_WINDOWS", 100)
    path = tmp_path / "long.txt"
    path.write_text("abcdefgh" * 500, encoding="utf-8")
    data = load_sequence_dataset(f"text:{path}", length=5)
    assert 90 <= len(data.y_train) <= 100


def test_one_hot_text_keeps_the_end_and_pads_before():
    encoded = one_hot_text("abcz", ["a", "b", "c"], 6)
    assert encoded.shape == (6, 3) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded[:2], 0)  # padding
    np.testing.assert_array_equal(encoded[2:5].argmax(axis=1), [0, 1, 2])
    np.testing.assert_array_equal(encoded[5], 0)  # z: not in the vocabulary
    np.testing.assert_array_equal(one_hot_text("abcab", ["a", "b", "c"], 2).argmax(axis=1), [0, 1])


def test_text_file_errors(tmp_path):
    cases = {
        "missing": (None, "not found"),
        "empty.txt": (b"", "is empty"),
        "latin1.txt": ("caf\u00e9 ol\u00e9".encode("latin-1"), "byte 3"),
        "short.txt": (b"hello", "has 5 characters"),
    }
    for name, (content, fragment) in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(DataError) as error:
            load_sequence_dataset(f"text:{path}", length=10)
        assert fragment in error.value.message, (name, error.value.message)
    with pytest.raises(DataError, match="needs the path"):
        load_sequence_dataset("text:")


# ------------------------------------------------------------------ a folder per class


def test_spam_folder(tmp_path):
    make_spam_folder(tmp_path, per_class=10)
    data = load_sequence_dataset(str(tmp_path), seed=0)
    assert_consistent(data)
    assert data.class_names == ["ham", "spam"] and data.num_classes == 2
    assert data.input_shape[0] == 100 and data.y_train.dtype == np.int64
    assert sorted(np.bincount(data.y_test)) == [2, 2] and sorted(np.bincount(data.y_train)) == [8, 8]
    vocabulary_size = data.input_shape[1]
    assert vocabulary_size < 40  # lower-cased: no capitals in the vocabulary
    assert_same(data, load_sequence_dataset(str(tmp_path), seed=0))


def test_folder_errors(tmp_path):
    (tmp_path / "spam").mkdir()
    (tmp_path / "spam" / "a.txt").write_text("buy now", encoding="utf-8")
    with pytest.raises(DataError, match="1 class folder; a classifier needs at least two"):
        load_sequence_dataset(str(tmp_path))
    (tmp_path / "ham").mkdir()
    with pytest.raises(DataError, match="ham has no .txt files"):
        load_sequence_dataset(str(tmp_path))
    (tmp_path / "ham" / "b.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(DataError, match="b.txt is not UTF-8 text: byte 0"):
        load_sequence_dataset(str(tmp_path))
