"""Kernel, stride and padding per spatial axis, shared by convolution and pooling.

One mechanism for every rank: a sequence ``(B, T, F)``, an image ``(B, H, W, C)``
and a volume ``(B, D, H, W, C)`` are all treated as volumes ``(B, D, H, W, C)``
— a sequence is ``(B, 1, 1, T, F)``, an image ``(B, 1, H, W, C)`` — so each
kernel is written once, for the 3-D case.  Missing leading axes have size 1,
kernel 1, stride 1 and no padding.

Output size per axis (Keras's rules), for input I, kernel K, stride S:

    valid         O = ⌊(I − K) / S⌋ + 1                 no padding
    pad P         O = ⌊(I − K + 2P) / S⌋ + 1             P zeros before and after
    same          O = ⌈I / S⌉                            total = max((O − 1)·S + K − I, 0),
                                                         before = total // 2, after = total − before

With ``same`` and an even kernel (or a stride that does not divide I) the extra
padded cell goes *after*, as in Keras/TensorFlow.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

Padding = Union[str, Sequence[int]]


def per_axis(values: Sequence[int], rank: int, what: str = "value") -> tuple[int, ...]:
    """A 1-tuple (a bare number in the spec) repeated over ``rank`` axes, else checked to have ``rank`` entries."""
    values = tuple(int(v) for v in values)
    if len(values) == 1:
        return values * rank
    if len(values) != rank:
        raise ValueError(f"{what} {'x'.join(map(str, values))} has {len(values)} axes, the input has {rank}")
    return values


def padding_amounts(
    padding: Padding, sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Cells added ``(before, after)`` on each spatial axis."""
    rank = len(sizes)
    if padding == "valid":
        return (0,) * rank, (0,) * rank
    if padding == "same":
        before, after = [], []
        for size, k, s in zip(sizes, kernel, stride):
            out = -(-size // s)  # ⌈I / S⌉
            total = max((out - 1) * s + k - size, 0)
            before.append(total // 2)
            after.append(total - total // 2)
        return tuple(before), tuple(after)
    pads = per_axis(padding, rank, "padding")
    return pads, pads


def output_sizes(
    sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int], before: Sequence[int], after: Sequence[int]
) -> tuple[int, ...]:
    """O = ⌊(I + before + after − K) / S⌋ + 1 on each axis (all three rules above are this one)."""
    return tuple((i + pb + pa - k) // s + 1 for i, k, s, pb, pa in zip(sizes, kernel, stride, before, after))


def to_3d(values: Sequence[int], fill: int) -> tuple[int, int, int]:
    """Per-axis values of a 1-D or 2-D layer, with ``fill`` for the missing leading axes: (W,) → (fill, fill, W)."""
    values = tuple(values)
    if not 1 <= len(values) <= 3:
        raise ValueError(f"spatial rank {len(values)} is not supported (1, 2 or 3)")
    return (fill,) * (3 - len(values)) + values  # type: ignore[return-value]


def as_volume(x: np.ndarray) -> np.ndarray:
    """``(B, *spatial, C)`` → ``(B, D, H, W, C)``, a view: sizes of missing leading axes are 1."""
    batch, *spatial, channels = x.shape
    return x.reshape((batch, *to_3d(spatial, 1), channels))


# ------------------------------------------- for the plain-NumPy references (test oracles)


def padded(x: np.ndarray, pad_before: Sequence[int], pad_after: Sequence[int], value: float = 0.0) -> np.ndarray:
    """A volume ``(B, D, H, W, C)`` with ``value`` added around its three spatial axes."""
    return np.pad(x, [(0, 0), *zip(pad_before, pad_after), (0, 0)], constant_values=value)


def unpadded(xp: np.ndarray, pad_before: Sequence[int], sizes: Sequence[int]) -> np.ndarray:
    """The inverse of `padded`: the cells of ``xp`` that lie inside the original input."""
    return xp[(slice(None), *(slice(p, p + n) for p, n in zip(pad_before, sizes)), slice(None))]


def window_index(o: Sequence[int], stride: Sequence[int], kernel: Sequence[int]) -> tuple[slice, ...]:
    """The index of output position o's window in a padded volume: ``xp[window_index(…)]`` is (B, KD, KH, KW, C)."""
    return (slice(None), *(slice(i * s, i * s + k) for i, s, k in zip(o, stride, kernel)), slice(None))


class Window:
    """Kernel, stride and padding of a conv or pool layer, per axis, for an input of given spatial sizes.

    ``kernel``/``stride``/``pad_before``/``pad_after``/``output`` have one entry
    per spatial axis of the layer; the ``*_3d`` versions are what the
    volume kernels take.
    """

    def __init__(self, sizes: Sequence[int], kernel: Sequence[int], stride: Sequence[int] | None, padding: Padding):
        rank = len(sizes)
        self.sizes = tuple(sizes)
        self.kernel = per_axis(kernel, rank, "kernel")
        self.stride = self.kernel if stride is None else per_axis(stride, rank, "stride")
        self.pad_before, self.pad_after = padding_amounts(padding, self.sizes, self.kernel, self.stride)
        self.output = output_sizes(self.sizes, self.kernel, self.stride, self.pad_before, self.pad_after)
        if min(self.output) < 1:
            raise ValueError(f"kernel {self.kernel} with stride {self.stride} does not fit input {self.sizes}")
        self.kernel_3d = to_3d(self.kernel, 1)
        self.stride_3d = to_3d(self.stride, 1)
        self.pad_before_3d = to_3d(self.pad_before, 0)
        self.pad_after_3d = to_3d(self.pad_after, 0)
        self.output_3d = to_3d(self.output, 1)
