"""Training, evaluation and prediction: the commands that run a network.

`train` is ``nnrun SPEC --data NAME``: read the spec, load the data, check that
they fit, compile the kernels, then loop over epochs and batches, showing
progress, checkpointing after each epoch, stopping early or on a diverging
loss or Ctrl-C, and finally evaluating on the test split.
"""
from __future__ import annotations

import json
import math
import os
import signal
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rich.console import Console

import dsl
from dsl.spec import Model, OptimizerSpec, Spec

from dsl.shapes import format_shape as shape_text

from .cli import input_shape as parse_input_shape, load_spec
from .console import fatal, say
from .model_io import ModelFileError, SavedModel, atomic_write, load_model, output_problem, save_model
from .views import (
    TrainingView,
    confusion_matrix,
    number,
    plural,
    render_confusion,
    render_filters,
    render_header,
    render_state_gradients,
)

INTERRUPTED = 130
PROGRESS_SECONDS = 0.1  # the progress bar is updated at most this often during an epoch
# A diverging network overflows float32; the loop's finiteness check reports that once,
# in words, so NumPy's own warnings (with a source line) are kept off the terminal.
QUIET_FLOATS = dict(over="ignore", invalid="ignore", divide="ignore")


class RunError(Exception):
    """Ends a command with a message, a hint and an exit status (2: bad input, 1: run-time failure)."""

    def __init__(self, message: str, hint: str | None = None, status: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status


def guarded(command):
    """Turn the expected failures of a command into a message and an exit status."""

    def run(args, out: Console, err: Console) -> int:
        from .datasets import DataError

        try:
            return command(args, out, err)
        except (DataError, ModelFileError) as error:
            return fatal(err, error.message, hint=error.hint)
        except RunError as error:
            return fatal(err, error.message, hint=error.hint, status=error.status)

    run.__name__ = command.__name__
    run.__doc__ = command.__doc__
    return run


# ------------------------------------------------------------------ shared steps


def make_network(model: Model, device: str, seed: int, optimizer: OptimizerSpec | None = None):
    from engine.backend import BackendUnavailable
    from engine.network import Network

    backend = "cuda" if device == "auto" else device  # auto: the GPU when there is one, else the processor
    try:
        return Network(model, seed=seed, backend=backend, optimizer=optimizer)
    except BackendUnavailable as error:
        if device == "auto":
            return Network(model, seed=seed, backend="cpu", optimizer=optimizer)
        raise RunError(str(error), "run on the processor instead: --device cpu") from None


def set_threads(threads: int | None) -> None:
    """``--threads N``: the engine's thread policy (engine.threads) on N threads; without
    the flag the network sets it on every thread numba offers."""
    if threads is None:
        return
    import numba

    from engine.threads import use_threads

    if threads < 1:
        raise RunError(f"--threads must be at least 1, not {threads}")
    available = numba.config.NUMBA_NUM_THREADS
    if threads > available:
        raise RunError(f"--threads {threads} is more than the {available} this machine offers", f"use --threads {available}")
    use_threads(threads)


def check_fit(model: Model, data, command: str = "train", trained_on: str | None = None) -> None:
    """The network's input and output must fit the data set, before any training
    (``command="train"``: the hint says how to change the spec) or evaluation of a saved
    model (``command="eval"``: the model is fixed, so the hint is about the data)."""
    if tuple(model.input_shape) != tuple(data.input_shape):
        kind = data.name.partition(":")[0]
        if command == "eval":  # a saved model cannot be changed: the data must fit it
            raise RunError(
                f"the model takes {shape_text(model.input_shape)} samples but {data.name} samples are "
                f"{shape_text(data.input_shape)}",
                f"the model was trained on {shape_text(model.input_shape)} data"
                + (f" ({trained_on})" if trained_on else "")
                + " and must be evaluated on data of that shape",
            )
        hint = f"write `input {'x'.join(map(str, data.input_shape))}` or leave the input line out"
        if len(model.input_shape) == 2 and kind in ("sine", "adding") and model.input_shape[1:] == tuple(data.input_shape[1:]):
            hint += f", or make the sequences {model.input_shape[0]} steps long: --data {kind}:{model.input_shape[0]}"
        raise RunError(
            f"the spec's input is {shape_text(model.input_shape)} but {data.name} samples are "
            f"{shape_text(data.input_shape)}",
            hint,
        )
    out = tuple(model.output_shape)
    per_step = per_step_layer(model)
    if per_step is not None and tuple(data.y_train.shape[1:])[:1] != out[:1]:
        raise RunError(
            f"the network gives {shape_text(out)} outputs, one per time step, because `{per_step}` returns "
            f"every step (`sequences`); {data.name} has one target per sequence",
            f"drop `sequences` from {per_step} so that the next layer reads only its last state h_T",
        )
    if data.task in ("classification", "binary"):
        classes = data.num_classes
        if model.loss == "bce":
            if out != (1,) or classes != 2:
                raise RunError(
                    f"loss bce needs one sigmoid output and two classes; the network gives "
                    f"{shape_text(out)} outputs and {data.name} has {classes} classes",
                    f"end with `dense {classes} softmax` and `loss cce`" if classes > 2 else "end with `dense 1 sigmoid`",
                )
        elif out != (classes,) and not (out == (1,) and classes == 2 and model.loss != "cce"):
            raise RunError(
                f"the last layer gives {shape_text(out)} outputs but {data.name} has {classes} classes",
                f"end the network with `dense {classes} softmax`",
            )
    else:
        target = tuple(data.y_train.shape[1:]) or (1,)
        if out != target:
            raise RunError(
                f"the network gives {shape_text(out)} outputs but {data.name}'s targets are {shape_text(target)}",
                f"end the network with `dense {math.prod(target)}`",
            )


def per_step_layer(model: Model) -> str | None:
    """The name of the recurrent layer whose `sequences` makes the output per time step, if any."""
    if len(model.output_shape) != 2:
        return None
    for info in reversed(model.layers):
        if getattr(info.layer, "return_sequences", False):
            return info.name
        if len(info.output_shape) != 2:
            return None
    return None


def state_gradient_norms(network) -> dict[str, list[float]]:
    """``{layer: [‖∂L/∂h_t‖ for t = 1 … T]}`` of each recurrent layer, from its last training batch."""
    norms = {}
    for layer in network.layers:
        values = getattr(layer, "state_gradient_norms", None)
        if values is not None:
            norms[layer.name] = [float(v) for v in np.asarray(values)]
    return norms


def metric_name(task: str) -> str:
    return "accuracy" if task in ("classification", "binary") else "mbe"


def check_outputs(args) -> None:
    """--save and --report must be writable before training starts, not after it ends."""
    for flag in ("save", "report"):
        path = getattr(args, flag, None)
        if path:
            problem = output_problem(path)
            if problem:
                raise RunError(f"--{flag} {path}: {problem}", "give a file in an existing folder you can write to")


def write_failure(error: OSError) -> str:
    return error.strerror or str(error)


def write_report(path: str | None, report: dict) -> None:
    if not path:
        return
    try:
        atomic_write(path, lambda file: file.write(json.dumps(report, indent=2).encode()))
    except OSError as error:
        raise RunError(f"could not write the report {path}: {write_failure(error)}", status=1) from None


def rescue_path(path: str) -> Path:
    return Path(tempfile.gettempdir()) / f"nnrun-rescued-{os.getpid()}-{Path(path).name or 'model.npz'}"


def save_or_rescue(path: str, model_file: SavedModel, kept: str = "") -> None:
    """Save the model; when that fails, save it in the temporary folder and say where.
    ``kept`` tells what ``path`` still holds (an earlier checkpoint), if anything."""
    try:
        save_model(path, model_file)
        return
    except OSError as error:
        reason = write_failure(error)
    rescue = rescue_path(path)
    try:
        save_model(rescue, model_file)
        where = f"the model was saved to {rescue} instead"
    except OSError:
        where = "the model could not be saved anywhere"
    raise RunError(
        f"could not write {path}: {reason}; {where}{kept}",
        "free some space or choose another --save file",
        status=1,
    )


# ------------------------------------------------------------------ train


@dataclass
class Settings:
    """One run's configuration: the spec's values, overridden by named CLI flags."""

    epochs: int
    batch: int
    validation: float
    patience: int | None
    seed: int
    optimizer: OptimizerSpec


def settings_from(spec: Spec, args, checkpoint_seed: int | None = None) -> Settings:
    """Flags override the spec; with --resume the checkpoint's seed is the default, so that
    the validation split and the shuffling continue as they began."""
    train = spec.train
    optimizer = spec.optimizer
    if getattr(args, "optimizer", None) and args.optimizer != optimizer.name:
        # Switching optimizer starts from that optimizer's default learning rate (Keras's).
        optimizer = OptimizerSpec(name=args.optimizer, lr=0.01 if args.optimizer == "sgd" else 0.001, clip=optimizer.clip)
    if getattr(args, "lr", None) is not None:
        if not args.lr > 0:
            raise RunError(f"--lr must be positive, not {args.lr}")
        optimizer = replace(optimizer, lr=args.lr)
    epochs = args.epochs if getattr(args, "epochs", None) is not None else train.epochs
    batch = args.batch if getattr(args, "batch", None) is not None else train.batch
    if epochs < 1:
        raise RunError(f"--epochs must be at least 1, not {epochs}")
    if batch < 1:
        raise RunError(f"--batch must be at least 1, not {batch}")
    seed = args.seed if getattr(args, "seed", None) is not None else checkpoint_seed
    if seed is None:
        seed = train.seed
    if seed is None:
        seed = int.from_bytes(os.urandom(3), "little")
    return Settings(epochs, batch, train.validation, train.patience, seed, optimizer)


class StopRequest:
    """Ctrl-C sets a flag the loop reads after each batch; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def __enter__(self):
        def handler(signum, frame):
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        try:
            self.previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave Ctrl-C as it is
            self.previous = None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def split_validation(data, fraction: float, seed: int):
    x, y = data.x_train, data.y_train
    if fraction <= 0:
        return x, y, None, None
    order = np.random.default_rng([seed, 1]).permutation(len(x))
    held = int(round(len(x) * fraction))
    if held < 1 or held >= len(x):
        raise RunError(f"validation {fraction} of {len(x)} samples leaves no data on one side")
    val, keep = order[:held], order[held:]
    return x[keep], y[keep], x[val], y[val]


@guarded
def train(args, out: Console, err: Console) -> int:
    """nnrun SPEC --data NAME: train, then evaluate on the test split."""
    from .datasets import labels_for_loss, load_dataset

    spec = load_spec(args.spec)
    check_outputs(args)
    checkpoint = load_model(args.resume) if getattr(args, "resume", None) else None
    settings = settings_from(spec, args, checkpoint.meta.get("seed") if checkpoint else None)
    set_threads(getattr(args, "threads", None))

    data = load_dataset(args.data, data_dir=getattr(args, "data_dir", None), seed=settings.seed)
    input_shape = parse_input_shape(getattr(args, "input", None))
    if spec.input_shape is None and input_shape is None:
        input_shape = tuple(data.input_shape)  # the data gives the input shape
    model = dsl.resolve(spec, input_shape)
    check_fit(model, data)

    x_train, y_train, x_val, y_val = split_validation(data, settings.validation, settings.seed)
    if settings.batch > len(x_train):
        say(err, f"warning: batch {settings.batch} is larger than the {len(x_train):,} training samples: "
                 f"using batches of {len(x_train):,} (1 iteration per epoch)", style="yellow")
        settings.batch = len(x_train)
    units = model.output_shape[-1]
    y_train = labels_for_loss(y_train, model.loss, data.num_classes, units=units)
    y_val = None if y_val is None else labels_for_loss(y_val, model.loss, data.num_classes, units=units)
    y_test = labels_for_loss(data.y_test, model.loss, data.num_classes, units=units)

    device = getattr(args, "device", None) or "cpu"
    network = make_network(model, device, settings.seed, settings.optimizer)
    history: list[dict] = []
    first_epoch = 1
    if checkpoint is not None:
        first_epoch, history = resume(args.resume, checkpoint, model, network)
        if first_epoch > settings.epochs:
            raise RunError(
                f"{args.resume} has already been trained for {first_epoch - 1} epochs",
                f"ask for more to continue: --epochs {first_epoch - 1 + settings.epochs}",
            )

    batches = math.ceil(len(x_train) / settings.batch)
    optimizer = settings.optimizer
    optimizer_text = f"{optimizer.name} lr {optimizer.lr:g}" + (
        f" momentum {optimizer.momentum:g}" if optimizer.name == "sgd" and optimizer.momentum else ""
    )
    seed_text = f"{settings.seed} (repeat this run with --seed {settings.seed})"
    if checkpoint is not None and getattr(args, "seed", None) is None and checkpoint.meta.get("seed") is not None:
        seed_text = f"{settings.seed} (the checkpoint's: the same validation split and shuffling)"
    resuming = [] if checkpoint is None else [(
        "resume",
        f"resuming from epoch {first_epoch} of {settings.epochs} ({args.resume}); "
        f"--epochs counts all epochs, the {plural(first_epoch - 1, 'epoch')} done included",
    )]
    render_header(
        out,
        [
            ("spec", spec.filename),
            ("data", f"{data.name} ({data.source})"),
            ("samples", f"{len(x_train):,} train · {0 if x_val is None else len(x_val):,} validation · {len(data.x_test):,} test"),
            ("input", f"{shape_text(model.input_shape)} → {shape_text(model.output_shape)}"),
            ("parameters", f"{model.total_params:,}"),
            ("training", f"loss {model.loss} · {optimizer_text} · {plural(settings.epochs, 'epoch')}"),
            *resuming,
            ("iterations", f"{len(x_train):,} / batch {settings.batch} → {plural(batches, 'iteration')} per epoch"),
            ("seed", seed_text),
            ("device", network.device if hasattr(network, "device") else device),
        ],
    )

    compile_kernels(model, device, settings, x_train[:2], y_train[:2], out)

    report = {
        "spec": spec.source,
        "data": data.name,
        "device": network.device,
        "epochs": history,
        "test": None,
        "stopped": "completed",
    }
    meta = {
        "data": data.name,
        "input_shape": list(model.input_shape),
        "class_names": list(data.class_names or []),
        "task": data.task,
        "loss": model.loss,
        "seed": settings.seed,
        "spec_file": spec.filename,
    }
    save_path = getattr(args, "save", None)
    stop = train_loop(network, model, settings, x_train, y_train, x_val, y_val, history, first_epoch, out, save_path, meta, spec)
    report["stopped"] = stop.reason

    if stop.reason == "diverged":
        write_report(getattr(args, "report", None), report)
        kept = f"; {save_path} still holds the model of epoch {len(history)}" if save_path and history else ""
        raise RunError(
            f"the loss became {stop.loss} in epoch {stop.epoch}, batch {stop.batch}: training diverged{kept}",
            f"lower the learning rate, for example --lr {settings.optimizer.lr / 10:g}",
            status=1,
        )
    if stop.reason == "interrupted":
        write_report(getattr(args, "report", None), report)
        if save_path and history:
            err.print(
                f"interrupted in epoch {stop.epoch}, batch {stop.batch}: {save_path} holds the model of epoch "
                f"{history[-1]['epoch']}; continue with --resume {save_path}",
                markup=False,
            )
        else:
            err.print(
                f"interrupted in epoch {stop.epoch}, batch {stop.batch}; nothing was saved "
                "(use --save FILE to keep a checkpoint after each epoch)",
                markup=False,
            )
        return INTERRUPTED
    if stop.reason == "early_stopping":
        out.print(f"early stopping: the validation loss has not improved for {settings.patience} epochs")

    gradients = state_gradient_norms(network)
    if gradients:  # a recurrent network: show back-propagation through time, unrolled
        render_state_gradients(out, gradients)
        report["state_gradient_norms"] = gradients
    test = evaluate_and_show(network, data, data.x_test, y_test, out)
    show_first_filters(network, model, out)
    report["test"] = test
    if save_path:  # the model first: a report that cannot be written must not cost the model
        kept = f"; {save_path} still holds the checkpoint of epoch {len(history)}" if history else ""
        save_or_rescue(save_path, saved(spec, network, {**meta, "epochs_done": len(history), "history": history, "test": test}), kept)
        out.print(f"saved the model to {save_path}", markup=False)
    write_report(getattr(args, "report", None), report)
    return 0


def show_first_filters(network, model: Model, out: Console) -> None:
    """What the first 2-D convolution learned: its filters, drawn as small pictures."""
    for info in model.layers:
        if info.type == "conv2d":
            render_filters(out, info.name, network.weights()[f"{info.name}/kernel"])
            return


def saved(spec: Spec, network, meta: dict) -> SavedModel:
    """The model as a file holds it; the optimizer state comes along so that --resume
    continues exactly, from a checkpoint or from a finished run."""
    return SavedModel(
        spec_text=spec.source,
        weights=network.weights(),
        meta=meta,
        optimizer_state=network.optimizer_state(),
    )


def resume(path: str, checkpoint: SavedModel, model: Model, network) -> tuple[int, list[dict]]:
    try:
        other = dsl.resolve(dsl.parse(checkpoint.spec_text, path), tuple(checkpoint.meta.get("input_shape") or ()) or None)
    except dsl.SpecError:
        other = None
    if other is None or architecture(other) != architecture(model):
        raise RunError(
            f"{path} was trained from another spec, so it cannot continue this one",
            "resume with the spec it was saved from, or start afresh without --resume",
        )
    load_weights_checked(network, checkpoint, path)
    if checkpoint.optimizer_state:
        network.load_optimizer_state(checkpoint.optimizer_state)
    history = list(checkpoint.meta.get("history", []))
    return len(history) + 1, history


def architecture(model: Model) -> list[tuple]:
    return [(info.type, tuple(info.output_shape), info.params) for info in model.layers]


def load_weights_checked(network, saved_model: SavedModel, path: str) -> None:
    try:
        network.load_weights(saved_model.weights)
    except (ValueError, KeyError) as error:
        raise ModelFileError(
            f"the weights in {path} do not fit its spec ({error})",
            "the file may come from another spec or be damaged; train and save it again",
        ) from None


def compile_kernels(model: Model, device: str, settings: Settings, x, y, out: Console) -> None:
    """Run one tiny step on a throw-away copy of the network so that the timed epochs
    exclude compilation (kernels are cached on disk: only the first run compiles)."""
    with out.status("preparing kernels (the first run compiles them: up to a minute)…", spinner="dots"), np.errstate(**QUIET_FLOATS):
        scratch = make_network(model, device, settings.seed, settings.optimizer)
        scratch.train_step(x, y)
        scratch.evaluate(x, y, batch=len(x))


@dataclass
class Stop:
    reason: str = "completed"
    epoch: int = 0
    batch: int = 0
    loss: float = 0.0


def train_loop(network, model, settings, x_train, y_train, x_val, y_val, history, first_epoch, out, save_path, meta, spec) -> Stop:
    metric = metric_name(network.task)
    view = TrainingView(out, metric, x_val is not None)
    for record in history:
        view.end_epoch(record)
    samples = len(x_train)
    batches = math.ceil(samples / settings.batch)
    best, waited = math.inf, 0
    monitored = "val_loss" if x_val is not None else "loss"
    for record in history:
        if record.get(monitored) is not None and record[monitored] < best:
            best, waited = record[monitored], 0
        else:
            waited += 1
    with StopRequest() as stop_request, view.live(), np.errstate(**QUIET_FLOATS):
        for epoch in range(first_epoch, settings.epochs + 1):
            order = np.random.default_rng([settings.seed, epoch]).permutation(samples)
            view.start_epoch(f"{epoch}/{settings.epochs}", batches)
            loss_sum = metric_sum = 0.0
            seen = 0
            started = shown = time.perf_counter()
            for batch in range(batches):
                index = order[batch * settings.batch : (batch + 1) * settings.batch]
                loss, metric_part = network.train_step(x_train[index], y_train[index])
                if not math.isfinite(loss):
                    return Stop("diverged", epoch, batch + 1, loss)
                loss_sum += loss * len(index)
                metric_sum += metric_part
                seen += len(index)
                now = time.perf_counter()
                if now - shown >= PROGRESS_SECONDS or batch + 1 == batches:  # redrawing costs more than a small step
                    shown = now
                    view.update(batch + 1, loss_sum / seen, metric_sum / seen, seen / (now - started))
                if stop_request.requested:
                    return Stop("interrupted", epoch, batch + 1, loss)
            train_seconds = time.perf_counter() - started
            record = {
                "epoch": epoch,
                "loss": loss_sum / seen,
                metric: metric_sum / seen,
                "val_loss": None,
                f"val_{metric}": None,
            }
            if x_val is not None:
                result = network.evaluate(x_val, y_val, batch=1000)
                record["val_loss"] = float(result["loss"])
                record[f"val_{metric}"] = float(result[metric])
            record["seconds"] = time.perf_counter() - started
            record["samples_per_second"] = seen / train_seconds
            history.append(record)
            view.end_epoch(record)
            if save_path:
                kept = f"; {save_path} still holds the checkpoint of epoch {epoch - 1}" if epoch > 1 else ""
                save_or_rescue(save_path, saved(spec, network, {**meta, "epochs_done": epoch, "history": history}), kept)
            if settings.patience is not None:
                if record[monitored] < best:
                    best, waited = record[monitored], 0
                else:
                    waited += 1
                    if waited >= settings.patience:
                        return Stop("early_stopping", epoch)
            if stop_request.requested:
                return Stop("interrupted", epoch + 1, 0)
    return Stop("completed", settings.epochs)


def evaluate_and_show(network, data, x, y, out: Console) -> dict:
    metric = metric_name(network.task)
    with np.errstate(**QUIET_FLOATS):
        result = network.evaluate(x, y, batch=1000)
    test = {"loss": float(result["loss"]), metric: float(result[metric])}
    value = f"{test[metric]:.2%}" if metric == "accuracy" else number(test[metric])
    out.print(f"[bold]test[/]  loss {number(test['loss'])}  {metric} {value}  ({plural(len(x), 'sample')})")
    if network.task in ("classification", "binary") and data.num_classes <= 20:
        with np.errstate(**QUIET_FLOATS):
            probabilities = network.predict(x, batch=1000)
        predicted = predicted_classes(probabilities)
        matrix = confusion_matrix(np.asarray(data.y_test).reshape(len(x), -1)[:, 0].round(), predicted, data.num_classes)
        names = list(data.class_names) if data.class_names else [str(i) for i in range(data.num_classes)]
        render_confusion(out, matrix, names)
    return test


def predicted_classes(probabilities: np.ndarray) -> np.ndarray:
    if probabilities.ndim == 2 and probabilities.shape[1] == 1:
        return (probabilities[:, 0] >= 0.5).astype(np.int64)
    return probabilities.argmax(axis=1)


# ------------------------------------------------------------------ eval / predict


def open_model(path: str, device: str):
    saved_model = load_model(path)
    meta = saved_model.meta
    input_shape = tuple(meta.get("input_shape") or ()) or None
    spec = dsl.parse(saved_model.spec_text, meta.get("spec_file") or str(path))
    model = dsl.resolve(spec, None if spec.input_shape else input_shape)
    network = make_network(model, device or "cpu", int(meta.get("seed") or 0))
    load_weights_checked(network, saved_model, path)
    return saved_model, model, network


@guarded
def evaluate(args, out: Console, err: Console) -> int:
    """nnrun eval MODEL --data NAME: the saved model on a data set's test split."""
    from .datasets import labels_for_loss, load_dataset

    saved_model, model, network = open_model(args.model, getattr(args, "device", None))
    data = load_dataset(args.data, data_dir=getattr(args, "data_dir", None))
    check_fit(model, data, "eval", trained_on=saved_model.meta.get("data"))
    y_test = labels_for_loss(data.y_test, model.loss, data.num_classes, units=model.output_shape[-1])
    out.print(f"{args.model}: {data.name} test split")
    evaluate_and_show(network, data, data.x_test, y_test, out)
    return 0


def read_input(path: str) -> np.ndarray:
    """INPUT of `predict`: an .npy array, or an IDX images file (plain or .gz)."""
    if not os.path.exists(path):
        raise RunError(f"no input file at {path}", "give an .npy array or an IDX images file")
    if os.path.isdir(path):
        raise RunError(f"{path} is a folder, not an input file", "give an .npy array or an IDX images file")
    if path.endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise RunError(f"{path} is not a readable .npy array ({error})") from None
    from .datasets import DataError, read_idx

    try:
        return read_idx(path)
    except (DataError, ValueError, OSError, EOFError):
        raise RunError(
            f"INPUT {path} is neither an .npy array nor an IDX images file",
            "save the samples with numpy.save('input.npy', array), or give an IDX file such as t10k-images-idx3-ubyte",
        ) from None


def as_batch(array: np.ndarray, input_shape: tuple[int, ...], path: str) -> np.ndarray:
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    elif not np.issubdtype(array.dtype, np.number):
        raise RunError(f"{path} holds {array.dtype} values, not numbers")
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
    raise RunError(
        f"{path} holds an array of shape {shape_text(array.shape)}, but the model takes {shape_text(shape)} samples",
        f"give one sample of {shape_text(shape)} or a batch of N×{shape_text(shape)}",
    )


@guarded
def predict(args, out: Console, err: Console) -> int:
    """nnrun predict MODEL INPUT: classes and probabilities for each sample."""
    from rich.table import Table

    saved_model, model, network = open_model(args.model, getattr(args, "device", None))
    batch = as_batch(read_input(args.input), model.input_shape, args.input)
    with np.errstate(**QUIET_FLOATS):
        outputs = network.predict(batch, batch=1000)
    names = saved_model.meta.get("class_names") or []
    top = max(1, int(getattr(args, "top", None) or 3))
    table = Table(title=f"{args.model} on {args.input}")
    table.add_column("sample", justify="right")
    if network.task in ("classification", "binary"):
        table.add_column("class")
        table.add_column("probability", justify="right")
        table.add_column("next best")
        for row, probabilities in enumerate(outputs[:1000]):
            if probabilities.shape == (1,):
                p = float(probabilities[0])
                probabilities = np.array([1 - p, p])
            order = np.argsort(-probabilities)[:top]
            label = lambda k: names[k] if k < len(names) else str(k)  # noqa: E731
            others = ", ".join(f"{label(k)} {probabilities[k]:.1%}" for k in order[1:])
            table.add_row(str(row), label(order[0]), f"{probabilities[order[0]]:.1%}", others)
    else:
        table.add_column("output")
        for row, values in enumerate(outputs[:1000]):
            table.add_row(str(row), " ".join(number(float(v)) for v in np.ravel(values)))
    out.print(table)
    if len(outputs) > 1000:
        out.print(f"(showing 1,000 of {len(outputs):,} samples)")
    return 0


# ------------------------------------------------------------------ generate


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
    logits = np.log(np.maximum(probabilities.astype(np.float64), 1e-30)) / temperature
    weights = np.exp(logits - logits.max())
    return int(rng.choice(len(weights), p=weights / weights.sum()))


@guarded
def generate(args, out: Console, err: Console) -> int:
    """nnrun generate MODEL --prompt TEXT --length N: continue a text one sampled character at a time.

    Each step one-hot encodes the last T characters (the model's input length;
    a shorter text is padded before it), predicts the next character's
    probabilities, samples one with ``--temperature`` (default 1) and appends it.
    """
    from rich.text import Text

    from .sequences import one_hot_text

    if args.length < 1:
        raise RunError(f"--length must be at least 1, not {args.length}")
    temperature = 1.0 if args.temperature is None else args.temperature
    if not temperature > 0 or not math.isfinite(temperature):
        raise RunError(
            f"--temperature must be a positive number, not {temperature:g}",
            "1 samples the model's own probabilities; smaller values (0.5, 0.1) come closer to the most likely character",
        )
    saved_model, model, network = open_model(args.model, "cpu")
    vocabulary = text_vocabulary(saved_model, model, args.model)
    unknown = sorted(set(args.prompt) - set(vocabulary))
    if unknown:
        raise RunError(
            f"the prompt has {len(unknown)} character{'s' if len(unknown) > 1 else ''} the model never saw: "
            + ", ".join(repr(char) for char in unknown),
            f"use only characters of its vocabulary: {''.join(vocabulary)!r}",
        )
    steps = model.input_shape[0]
    rng = np.random.default_rng(args.seed)
    text = args.prompt
    # Each character is shown as soon as it is drawn; Ctrl-C keeps what is on screen.
    out.print(Text(args.prompt, style="bold"), end="", soft_wrap=True)
    try:
        for _ in range(args.length):
            probabilities = network.predict(one_hot_text(text, vocabulary, steps)[None], batch=1)[0]
            character = vocabulary[sample(probabilities, temperature, rng)]
            text += character
            out.print(Text(character), end="", soft_wrap=True)
    except KeyboardInterrupt:
        out.print()
        return INTERRUPTED
    out.print()
    return 0
