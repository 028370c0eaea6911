"""Using a saved model: evaluate it on a data set, classify samples, write text.

    saved_model, model, network = open_model("cnn.npz")
    result = evaluate_saved("cnn.npz", "mnist")           # {"loss", "accuracy"} and a confusion matrix
    outputs = predict_file(network, model, "digits.npy")
    inside = show_samples("cnn.npz", "mnist", 0, None)         # every layer's output for one digit
    text = "".join(generate_text(...))                     # one character at a time

Nothing here prints; `nnrun.commands` shows the results.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from nnrun.dsl.shapes import format_shape as shape_text
from nnrun.dsl.memory import inference_memory
from nnrun.dsl.spec import Model

from .checkpoints import load_weights_checked
from .errors import RunError
from .limits import check_memory
from .model_io import SavedModel, load_model
from .networks import QUIET_FLOATS, make_network
from .training import EVAL_BATCH, evaluate_test, fit_data, reads_as
from .words import class_label, plural

INPUT_FORMATS = "an .npy array or an IDX images file"


def read_model(path: str) -> SavedModel:
    """A model file, read and checked (`load_model`: its spec resolved as ``.model``), that fits in memory."""
    saved_model = load_model(path)
    check_memory(inference_memory(saved_model.model), f"running {path} ({saved_model.model.total_params:,} parameters)",
                 "use a machine with more memory")
    return saved_model


def network_of(saved_model: SavedModel, path: str, device: str):
    """The network of a model file with its saved weights, measuring accuracy for a classifier."""
    meta = saved_model.meta
    network = make_network(saved_model.model, device, int(meta.get("seed") or 0))
    if meta.get("task") in ("classification", "binary"):
        network.measure_as_classifier()
    load_weights_checked(network, saved_model, path)
    return network


def open_model(path: str, device: str | None = None):
    """(saved file, resolved model, network with the saved weights) for a model file."""
    saved_model = read_model(path)
    return saved_model, saved_model.model, network_of(saved_model, path, device or "cpu")


@dataclass
class Evaluation:
    test: dict  # {"loss", "accuracy" or "mbe"}
    confusion: np.ndarray | None  # rows true, columns predicted (up to 20 classes)
    class_names: list[str]
    samples: int
    data: object  # the `Dataset`


def evaluate_saved(path: str, data_name: str, data_dir: str | None = None, device: str | None = None,
                   batch: int = EVAL_BATCH) -> Evaluation:
    """The saved model on a data set's test split, ``batch`` samples per forward pass."""
    from .datasets import labels_for_loss, load_dataset

    saved_model, model, network = open_model(path, device)
    # the training run's seed: a generated set, or the split of a text, is the one the model was tested on
    data = load_dataset(data_name, data_dir=data_dir, seed=int(saved_model.meta.get("seed") or 0))
    trained_classes = list(saved_model.meta.get("class_names") or [])
    if trained_classes and data.class_names and trained_classes != list(data.class_names):
        raise RunError(f"the model's classes are not {data.name}'s: it was trained on "
                       f"{saved_model.meta.get('data') or 'another data set'} ({_few(trained_classes)}), "
                       f"{data.name} has {_few(data.class_names)}",
                       "evaluate it on data with the same classes (for a text model: a text of the same characters)")
    data = fit_data(model, data, "eval", trained_on=saved_model.meta.get("data"))
    y_test = labels_for_loss(data.y_test, model.loss, data.num_classes, units=model.output_shape[-1])
    if len(data.x_test) == 0:
        raise RunError(f"{data.name} has no test samples to evaluate on")
    return Evaluation(*evaluate_test(network, data, data.x_test, y_test, batch), samples=len(data.x_test), data=data)


def _few(names) -> str:
    names = [repr(name) if len(name) == 1 else name for name in names]
    return ", ".join(names[:8]) + (f" … ({len(names)} classes)" if len(names) > 8 else "")


def read_input(path: str) -> np.ndarray:
    """INPUT of `predict`: an .npy array, or an IDX images file (plain or .gz)."""
    from .limits import read_npy, regular_file

    if not os.path.exists(path):
        raise RunError(f"no input file at {path}", f"give {INPUT_FORMATS}")
    if os.path.isdir(path):
        raise RunError(f"{path} is a folder, not an input file", f"give {INPUT_FORMATS}")
    regular_file(path, "an input file")  # /dev/zero, a FIFO: refused before reading
    with open(path, "rb") as file:
        magic = file.read(6)
    if magic == b"\x93NUMPY" or path.lower().endswith(".npy"):  # whatever the file is called
        return read_npy(path)
    from .datasets import DataError, read_idx

    try:
        return read_idx(path)
    except (DataError, ValueError, OSError, EOFError):
        raise RunError(
            f"INPUT {path} is neither an .npy array nor an IDX images file",
            "save the samples with numpy.save('input.npy', array), or give an IDX file such as t10k-images-idx3-ubyte",
        ) from None


def as_batch(array: np.ndarray, input_shape: tuple[int, ...], path: str) -> np.ndarray:
    """One sample or a batch of them, as float32 ``(N, *input_shape)``; bytes are scaled to [0, 1]
    and an image batch is flattened for a vector input (`input 784`)."""
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    elif array.dtype.kind not in "biuf":
        kind = "complex numbers" if array.dtype.kind == "c" else f"{array.dtype} values"
        raise RunError(f"{path} holds {kind}, not real numbers", "save the samples as a float or integer array")
    if array.ndim == 0:
        raise RunError(f"{path} holds a single number, not a sample of {shape_text(tuple(input_shape))}",
                       f"give one sample of {shape_text(tuple(input_shape))} or a batch of them")
    array = array.astype(np.float32)
    if array.size == 0:
        raise RunError(f"{path} holds no samples (an array of shape {shape_text(array.shape)})",
                       f"give one sample of {shape_text(tuple(input_shape))} or a batch of N×{shape_text(tuple(input_shape))}, N ≥ 1")
    if not np.isfinite(array).all():
        bad = int(array.size - np.isfinite(array).sum())
        raise RunError(f"{path} holds {plural(bad, 'value')} that are not finite numbers (NaN or infinity)",
                       "replace them (numpy.nan_to_num) or leave those samples out")
    shape = tuple(input_shape)
    if array.shape == shape:
        return array[None]
    if array.shape[1:] == shape:
        return array
    if shape[-1] == 1 and array.shape == shape[:-1]:
        return array[None, ..., None]
    if shape[-1] == 1 and array.shape[1:] == shape[:-1]:
        return array[..., None]
    if reads_as(shape, array.shape):  # one image for `input 784` or `input 28x28`
        return array.reshape(1, *shape)
    if array.ndim >= 2 and reads_as(shape, array.shape[1:]):  # a batch of them
        return array.reshape(len(array), *shape)
    raise RunError(
        f"{path} holds an array of shape {shape_text(array.shape)}, but the model takes samples of {shape_text(shape)}",
        f"give one sample of {shape_text(shape)} or a batch of N×{shape_text(shape)}",
    )


def predict_file(network, model: Model, path: str) -> np.ndarray:
    """The network's outputs for every sample of an input file: (N, outputs)."""
    batch = as_batch(read_input(path), model.input_shape, path)
    with np.errstate(**QUIET_FLOATS):
        return network.predict(batch, batch=1000)


def text_vocabulary(saved_model: SavedModel, model: Model, path: str) -> list[str]:
    """The characters of a next-character model (its class names), or a RunError saying why it is not one."""
    meta = saved_model.meta
    vocabulary = list(meta.get("class_names") or [])
    shape, out = tuple(model.input_shape), tuple(model.output_shape)
    is_text = (
        meta.get("task") == "classification"
        and len(shape) == 2
        and out == (shape[1],) == (len(vocabulary),)
        and all(isinstance(char, str) and len(char) == 1 for char in vocabulary)
    )
    if not is_text:
        raise RunError(
            f"{path} is not a text model: it was trained on {meta.get('data') or 'unknown data'} "
            f"({shape_text(shape)} → {shape_text(out)}), not to predict the next character",
            "train one on a text file first: nnrun specs/text_lstm.net --data text:FILE --save model.npz",
        )
    return vocabulary


def sample(probabilities: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Draw a class from p_i^(1/T) / Σ_j p_j^(1/T): T = 1 is the model's own distribution,
    T → 0 the most likely class (argmax), T > 1 flatter than the model."""
    logits = np.log(np.maximum(probabilities.astype(np.float64), 1e-30))
    with np.errstate(over="ignore"):  # a tiny T sends all but the largest to −∞, whose exp is 0
        weights = np.exp((logits - logits.max()) / temperature)
    return int(rng.choice(len(weights), p=weights / weights.sum()))


def generate_text(path: str, prompt: str, length: int, temperature: float = 1.0, seed: int | None = None) -> Iterator[str]:
    """Continue ``prompt`` one sampled character at a time, yielding each as it is drawn.

    Each step one-hot encodes the last T characters (the model's input length;
    a shorter text is padded before it), predicts the next character's
    probabilities, samples one with ``temperature`` and appends it.  The checks
    (length, temperature, a text model, the prompt's characters) run before the
    first character, when the generator is created.
    """
    from .sequences import one_hot_text

    if length < 1:
        raise RunError(f"--length must be at least 1, not {length}")
    if not temperature > 0 or not math.isfinite(temperature):
        raise RunError(
            f"--temperature must be a positive number, not {temperature:g}",
            "1 samples the model's own probabilities; smaller values (0.5, 0.1) come closer to the most likely character",
        )
    saved_model, model, network = open_model(path, "cpu")
    vocabulary = text_vocabulary(saved_model, model, path)
    unknown = sorted(set(prompt) - set(vocabulary))
    if unknown:
        raise RunError(
            f"the prompt has {len(unknown)} character{'s' if len(unknown) > 1 else ''} the model never saw: "
            + ", ".join(repr(char) for char in unknown),
            f"use only characters of its vocabulary: {''.join(vocabulary)!r}",
        )
    steps = model.input_shape[0]
    rng = np.random.default_rng(seed)

    def characters() -> Iterator[str]:
        text = prompt
        for _ in range(length):
            probabilities = network.predict(one_hot_text(text, vocabulary, steps)[None], batch=1)[0]
            character = vocabulary[sample(probabilities, temperature, rng)]
            text += character
            yield character

    return characters()


@dataclass
class Inside:
    """What each layer of a saved model makes of some samples (`nnrun show`)."""

    samples: np.ndarray  # (N, *input_shape)
    labels: list[str]  # one per sample: "sample 0" …
    layers: list[tuple[str, str, np.ndarray]]  # (name, type, outputs (N, *shape)), activations folded in
    outputs: np.ndarray  # the prediction (N, outputs)
    class_names: list[str]
    task: str


def look_inside(saved_model: SavedModel, path: str, samples: np.ndarray, labels: list[str]) -> Inside:
    """Run ``samples`` through the saved model one layer at a time, on the reference backend (the
    plain-NumPy functions, no fused steps), keeping every layer's output.  An activation step of
    a statement (``dense 2 tanh``) is folded into its layer: the output shown is after it."""
    network = network_of(saved_model, path, "reference")
    x = samples.astype(np.float32)
    layers: list[tuple[str, str, np.ndarray]] = []
    with np.errstate(**QUIET_FLOATS):
        for step in network.layers:
            x = step.forward(x, training=False)
            folded = layers and step.name.startswith(layers[-1][0] + "_") and step.info.type == "activation"
            if folded:
                layers[-1] = (layers[-1][0], layers[-1][1], x)
            else:
                layers.append((step.name, step.info.type, x))
    return Inside(samples, labels, layers, x, list(saved_model.meta.get("class_names") or []), network.task)


def show_samples(path: str, data_name: str | None, sample: int | None, input_file: str | None,
                 data_dir: str | None = None) -> Inside:
    """`nnrun show`'s samples: ``--input FILE``, or ``--data NAME`` (``--sample K`` of the test split;
    without it, the whole split when it has at most 16 samples — XOR's four points — else sample 0)."""
    from .datasets import load_dataset

    saved_model = read_model(path)
    model = saved_model.model
    if input_file is not None:
        batch = as_batch(read_input(input_file), model.input_shape, input_file)[:16]
        return look_inside(saved_model, path, batch, [f"{input_file} [{i}]" for i in range(len(batch))])
    data = load_dataset(data_name, data_dir=data_dir, seed=int(saved_model.meta.get("seed") or 0))
    data = fit_data(model, data, "eval", saved_model.meta.get("data"))
    count = len(data.x_test)
    if sample is None:
        indices = list(range(count)) if count <= 16 else [0]
    elif not 0 <= sample < count:
        raise RunError(f"--sample {sample} is out of range: {data.name}'s test split has {plural(count, 'sample')}",
                       f"give a number from 0 to {count - 1:,}")
    else:
        indices = [sample]
    labels = []
    for i in indices:
        label = f"{data.name} test sample {i}"
        if data.task in ("classification", "binary"):
            truth = int(np.asarray(data.y_test[i]).reshape(-1)[0])
            label += f", true class {class_label(data.class_names, truth)}"
        labels.append(label)
    return look_inside(saved_model, path, data.x_test[indices], labels)
