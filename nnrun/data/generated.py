"""Data sets drawn from a seed: no files, the same arrays for the same seed.

=========  ==============  ===========  ===============  ========================
name       x               train/test   task             classes
=========  ==============  ===========  ===============  ========================
xor        (2,) in {0, 1}  256 / 4      binary           0, 1 (x₁ XOR x₂)
xo         16×16×1 images  4000 / 1000  binary           X = 0, O = 1
circles    (2,) points     1000 / 500   binary           outer = 0, inner = 1
spiral     (2,) points     900 / 300    classification   arm 0, 1, 2
=========  ==============  ===========  ===============  ========================

Every class has the same number of samples in each split.
"""
from __future__ import annotations

import numpy as np

from .dataset import Dataset

XO_SIZE = 16  # xo images are XO_SIZE × XO_SIZE × 1


def xor(seed: int = 0) -> Dataset:
    """The four points of the truth table, repeated 64 times in order, so that any
    4 consecutive samples (and so every batch of 4 or more) hold all four; the
    test split is the truth table itself.  No noise: ``seed`` changes nothing."""
    points = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    targets = np.array([[0], [1], [1], [0]], dtype=np.float32)  # x₁ XOR x₂
    return Dataset(
        name="xor", x_train=np.tile(points, (64, 1)), y_train=np.tile(targets, (64, 1)),
        x_test=points.copy(), y_test=targets.copy(), task="binary", num_classes=2,
        class_names=["0", "1"], input_shape=(2,), source="generated",
    )


def draw_xo(rng: np.random.Generator, is_o: np.ndarray) -> np.ndarray:
    """Grayscale images (N, 16, 16) of an X (is_o False) or an O (True): random
    centre shift of ±1.5 px, half-size 3.5–5 px, stroke width 1–2.5 px, Gaussian
    noise σ = 0.08, anti-aliased strokes, values in [0, 1]."""
    count = len(is_o)
    rows, cols = np.mgrid[0:XO_SIZE, 0:XO_SIZE].astype(np.float32) + 0.5  # pixel centres
    centre = (XO_SIZE / 2 + rng.uniform(-1.5, 1.5, size=(count, 2))).astype(np.float32)
    half = rng.uniform(3.5, 5, size=count).astype(np.float32)
    width = rng.uniform(1.0, 2.5, size=count).astype(np.float32)

    dy = rows[None] - centre[:, 0, None, None]  # (N, 16, 16) offsets from each centre
    dx = cols[None] - centre[:, 1, None, None]
    h = half[:, None, None]
    # X: distance to the nearer diagonal |dy ∓ dx| / √2, inside the square of half-size h
    to_diagonal = np.minimum(np.abs(dy - dx), np.abs(dy + dx)) / np.sqrt(2)
    outside_square = np.maximum(np.maximum(np.abs(dx), np.abs(dy)) - h, 0)
    distance_x = np.maximum(to_diagonal, outside_square)
    # O: distance to the circle of radius h
    distance_o = np.abs(np.sqrt(dx**2 + dy**2) - h)
    distance = np.where(is_o[:, None, None], distance_o, distance_x)

    ink = np.clip(width[:, None, None] / 2 + 0.5 - distance, 0, 1)  # 1 inside the stroke, fading over 1 px
    noise = rng.normal(0, 0.08, size=ink.shape)
    return np.clip(ink + noise, 0, 1).astype(np.float32)


def balanced_labels(rng: np.random.Generator, count: int, num_classes: int) -> np.ndarray:
    """``count`` labels, the same number of each class, in random order."""
    return rng.permutation(np.arange(count) % num_classes)


def xo(seed: int = 0) -> Dataset:
    """The course's X-versus-O images, 16×16×1, 4000 train and 1000 test, half of each."""
    rng = np.random.default_rng(seed)
    split = {}
    for part, count in (("train", 4000), ("test", 1000)):
        labels = balanced_labels(rng, count, 2)
        split[part] = (draw_xo(rng, labels == 1)[..., np.newaxis], labels.astype(np.float32).reshape(-1, 1))
    return Dataset(
        name="xo", x_train=split["train"][0], y_train=split["train"][1], x_test=split["test"][0],
        y_test=split["test"][1], task="binary", num_classes=2, class_names=["X", "O"],
        input_shape=(XO_SIZE, XO_SIZE, 1), source="generated",
    )


def circles(seed: int = 0) -> Dataset:
    """Two concentric circles, radius 1 (outer, class 0) and 0.5 (inner, class 1),
    Gaussian noise σ = 0.08 on each coordinate; 1000 train, 500 test."""
    rng = np.random.default_rng(seed)
    split = {}
    for part, count in (("train", 1000), ("test", 500)):
        labels = balanced_labels(rng, count, 2)
        radius = np.where(labels == 1, 0.5, 1.0)
        angle = rng.uniform(0, 2 * np.pi, size=count)
        points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        points += rng.normal(0, 0.08, size=points.shape)
        split[part] = (points.astype(np.float32), labels.astype(np.float32).reshape(-1, 1))
    return Dataset(
        name="circles", x_train=split["train"][0], y_train=split["train"][1], x_test=split["test"][0],
        y_test=split["test"][1], task="binary", num_classes=2, class_names=["outer", "inner"],
        input_shape=(2,), source="generated",
    )


def spiral(seed: int = 0) -> Dataset:
    """The classic three-arm spiral (CS231n): arm k has points at radius r ∈ [0, 1]
    and angle 4k + 4r (radians) + noise σ = 0.2; 300 train and 100 test per arm."""
    rng = np.random.default_rng(seed)
    split = {}
    for part, per_arm in (("train", 300), ("test", 100)):
        labels = balanced_labels(rng, 3 * per_arm, 3)
        radius = rng.uniform(0, 1, size=len(labels))
        angle = 4 * labels + 4 * radius + rng.normal(0, 0.2, size=len(labels))
        points = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
        split[part] = (points.astype(np.float32), labels.astype(np.int64))
    return Dataset(
        name="spiral", x_train=split["train"][0], y_train=split["train"][1], x_test=split["test"][0],
        y_test=split["test"][1], task="classification", num_classes=3, class_names=["0", "1", "2"],
        input_shape=(2,), source="generated",
    )


GENERATORS = {"xor": xor, "xo": xo, "circles": circles, "spiral": spiral}
