"""Pictures for a slide, drawn by matplotlib (the optional extra ``nnrun[plots]``).

    save_curves("curves.png", history, "accuracy", best_epoch=4)   # learning curves
    save_before_after("sobel.png", application)                    # nnrun apply on a picture
    save_feature_maps("maps.png", [("conv_1", maps)])               # nnrun show --png

matplotlib is imported inside each function, with the Agg backend (no window, no
display needed); without it, one sentence says how to install it.  The file type
comes from the name: .png, .svg or .pdf.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .errors import RunError

FORMATS = (".png", ".svg", ".pdf")
INSTALL = "pip install 'nnrun[plots]'  (or: pip install matplotlib)"


def pyplot():
    """matplotlib.pyplot on the Agg backend, or a RunError saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise RunError("pictures need matplotlib, which is not installed", INSTALL) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def check_picture_name(path: str, flag: str) -> None:
    """The file type must be one matplotlib writes here; checked before any work."""
    if os.path.splitext(path)[1].lower() not in FORMATS:
        raise RunError(f"{flag} {path}: the picture's name must end in {', '.join(FORMATS)}", f"e.g. {flag} curves.png")


def _save(figure, path: str) -> None:
    from .model_io import atomic_write

    file_type = os.path.splitext(path)[1].lower().lstrip(".")
    try:
        atomic_write(path, lambda file: figure.savefig(file, format=file_type, dpi=150, bbox_inches="tight"))
    except OSError as error:
        raise RunError(f"could not write {path}: {error.strerror or error}", status=1) from None
    finally:
        figure.clear()
        pyplot().close(figure)


def save_curves(path: str, history: list[dict], metric: str, best_epoch: int | None = None, title: str = "") -> None:
    """Loss and ``metric`` per epoch, training against validation; the early-stopping epoch marked;
    accuracy in percent, as the terminal shows it."""
    plt = pyplot()
    scale = 100.0 if metric == "accuracy" else 1.0
    epochs = [record["epoch"] for record in history]
    has_validation = any(record.get("val_loss") is not None for record in history)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, key, name in ((axes[0], "loss", "loss"), (axes[1], metric, metric + (" (%)" if scale != 1 else ""))):
        factor = scale if key == metric else 1.0
        axis.plot(epochs, [_value(record.get(key)) * factor for record in history], marker="o", label="training")
        validation = [_value(record.get(f"val_{key}")) * factor for record in history]
        if any(value == value for value in validation):  # not all NaN
            axis.plot(epochs, validation, marker="o", label="validation")
        if best_epoch is not None:
            axis.axvline(best_epoch, color="grey", linestyle="--", label=f"lowest {'validation ' if has_validation else ''}loss (epoch {best_epoch})")
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, path)


def _value(value) -> float:
    return float("nan") if value is None else float(value)


def save_before_after(path: str, application) -> None:
    """`nnrun apply` on a picture: the input and each output map, side by side."""
    plt = pyplot()
    x, output = application.input, application.output
    if x.ndim != 3 or output.ndim != 3:
        raise RunError("--png draws pictures: it needs a 2-D input and output (conv, pool or an activation)")
    maps = [("before", x[:, :, 0])] + [(f"after {f + 1}" if output.shape[2] > 1 else "after", output[:, :, f])
                                      for f in range(output.shape[2])]
    figure, axes = plt.subplots(1, len(maps), figsize=(3 * len(maps), 3.4), squeeze=False)
    for axis, (title, image) in zip(axes[0], maps):
        axis.imshow(image, cmap="gray")
        axis.set_title(title)
        axis.set_xticks([])
        axis.set_yticks([])
        if image.shape[0] <= 12 and image.shape[1] <= 12:  # a hand exercise: the numbers in their cells
            middle = (float(image.max()) + float(image.min())) / 2
            for (row, col), value in np.ndenumerate(image):
                axis.text(col, row, f"{value:.4g}", ha="center", va="center", fontsize=9,
                          color="black" if value > middle else "white")
            axis.set_xticks(np.arange(-0.5, image.shape[1]), minor=True)
            axis.set_yticks(np.arange(-0.5, image.shape[0]), minor=True)
            axis.grid(which="minor", color="grey", linewidth=0.5)
            axis.tick_params(which="minor", length=0)
    figure.suptitle(application.statement + (f" — {application.kernel_name}" if application.kernel_name else ""))
    figure.tight_layout()
    _save(figure, path)


def save_feature_maps(path: str, layers: list[tuple[str, np.ndarray]], title: str = "") -> None:
    """Each layer's maps (H, W, C) as a grid of small grey pictures, one row block per layer (the
    input first), each drawn at its size, so that the maps are seen to shrink."""
    plt = pyplot()
    columns = 8
    largest = max(maps.shape[0] for _name, maps in layers)
    rows = sum(math.ceil(maps.shape[-1] / columns) for _, maps in layers)
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.45), squeeze=False)
    row = 0
    for name, maps in layers:
        for channel in range(maps.shape[-1]):
            axis = axes[row + channel // columns][channel % columns]
            axis.imshow(maps[:, :, channel], cmap="gray", extent=(0, maps.shape[1], maps.shape[0], 0))
            axis.set_xlim(0, largest)
            axis.set_ylim(largest, 0)
            axis.set_title(f"{name} {channel + 1}" if maps.shape[-1] > 1 else name, fontsize=7)
        row += math.ceil(maps.shape[-1] / columns)
    for axis in axes.ravel():
        axis.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    _save(figure, path)
