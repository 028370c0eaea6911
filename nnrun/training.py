"""The training run, as a function: settings in, history and trained network out.

    result = train(TrainConfig(spec=load_spec("specs/xor.net"), data="xor"))
    result.history[-1]["accuracy"], result.test["accuracy"], result.network

`train` reads nothing from the command line and prints nothing: it tells what
happens through a `Progress` object (the command line's draws the header, the
progress bar and the epoch table; the default one ignores it all).  In order:
resolve the spec against the data, check that they fit, build the network (and
load a checkpoint to resume), compile the kernels on a throw-away copy, loop over
epochs and batches — checkpointing after each epoch, stopping early, on a
diverging loss or on Ctrl-C — then evaluate on the test split, save the model and
write the report.  How the run ended is `TrainResult.stopped`; the caller decides
what that means (the command line: exit 0, 1 or 130).
"""
from __future__ import annotations

import math
import os
import signal
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import ContextManager

import numpy as np

from nnrun import dsl
from nnrun.dsl.shapes import format_shape as shape_text
from nnrun.dsl.spec import Model, OptimizerSpec, Spec

from .checkpoints import check_not_inside, check_paths, data_path, resume, save_or_rescue, saved, write_report
from .errors import RunError, Terminated
from .i18n import _, ngettext, number_text
from .model_io import History, load_model
from .networks import QUIET_FLOATS, confusion_matrix, make_network, metric_name, predicted_classes, set_threads
from .words import plural

PROGRESS_SECONDS = 0.1  # the progress bar is updated at most this often during an epoch
# A loss this many times the run's first one has exploded, even while still finite (SGD at
# lr 50 on the MLP reached 1.9·10²¹): stopped and reported like a NaN.
EXPLODED = 1e6
EVAL_BATCH = 1000  # samples per forward pass when evaluating (memory only: the result is the same)
STOPPED = ("completed", "early_stopping", "diverged", "interrupted")


@dataclass
class TrainConfig:
    """What one training run is asked to do.  ``None`` means: the spec's value (for
    ``seed``: the checkpoint's when resuming, else the spec's, else a fresh one)."""

    spec: Spec
    data: object  # a data set name or path ("mnist", "text:FILE", "d.npz"), or a loaded `Dataset`
    data_dir: str | None = None
    input_shape: tuple[int, ...] | None = None  # used when the spec has no `input` line
    epochs: int | None = None  # with `resume`: the total, epochs already done included
    batch: int | None = None
    lr: float | None = None
    validation: float | None = None  # the fraction of the training split held out
    optimizer: str | None = None  # "sgd" or "adam"; a switch starts from its Keras default lr
    seed: int | None = None
    device: str = "cpu"  # "cpu", "cuda" or "auto"
    threads: int | None = None
    save: str | None = None  # a checkpoint after every epoch, the final model at the end
    resume: str | None = None
    report: str | None = None  # the run as JSON
    plot: str | None = None  # the learning curves as a picture (.png, .svg, .pdf), drawn by the caller


@dataclass
class Settings:
    """The values the run uses: the spec's, overridden by the config's."""

    epochs: int
    batch: int
    validation: float
    patience: int | None
    seed: int
    optimizer: OptimizerSpec


@dataclass
class Stop:
    reason: str = "completed"  # one of STOPPED
    epoch: int = 0
    batch: int = 0
    loss: float = 0.0
    terminated: bool = False  # "interrupted" by SIGTERM rather than Ctrl-C


@dataclass
class TrainResult:
    """How a run ended and what it made.  ``test`` is None unless it ``completed`` or stopped early."""

    stopped: str
    stop: Stop
    history: list[dict]  # one record per epoch: epoch, loss, metric, val_…, seconds, samples_per_second
    network: object  # the engine's Network, trained
    model: Model
    spec: Spec
    data: object  # the `Dataset`
    settings: Settings
    metric: str  # "accuracy" or "mbe"
    first_epoch: int = 1  # > 1 when resumed
    test: dict | None = None  # {"loss", metric}
    confusion: np.ndarray | None = None  # (classes, classes): rows true, columns predicted
    class_names: list[str] = field(default_factory=list)
    state_gradient_norms: dict[str, list[float]] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


class Progress:
    """What a training run tells while it runs.  Each method does nothing here; the
    command line's `nnrun.views.TrainingDisplay` draws them."""

    def warning(self, text: str) -> None:
        """Something the user should know, that does not stop the run."""

    def header(self, rows: list[tuple[str, str]]) -> None:
        """The run's settings, as (name, value) rows, before anything is compiled."""

    def compiling(self) -> ContextManager:
        """Around the run's first training step, which compiles the kernels (seconds to a
        minute the first time; loaded from the disk cache afterwards).  Called inside `training`."""
        return nullcontext()

    def training(self, metric: str, validation: bool, history: list[dict], epochs: int) -> ContextManager:
        """Around the epochs (``epochs`` in all); ``history`` holds those of a resumed checkpoint."""
        return nullcontext()

    def epoch_started(self, label: str, batches: int) -> None:
        """Epoch ``label`` ("3/5") begins, with ``batches`` iterations."""

    def batch_done(self, done: int, loss: float, metric: float, samples_per_second: float) -> None:
        """The running means after ``done`` batches (called at most every PROGRESS_SECONDS)."""

    def epoch_done(self, record: dict) -> None:
        """One epoch's record, as it goes into the history and the report."""


def settings_from(spec: Spec, config: TrainConfig, checkpoint_seed: int | None = None) -> Settings:
    """The config overrides the spec; with ``resume`` the checkpoint's seed is the default,
    so that the validation split and the shuffling continue as they began."""
    train_spec = spec.train
    optimizer = spec.optimizer
    if config.optimizer and config.optimizer != optimizer.name:
        # Switching optimizer starts from that optimizer's default learning rate (Keras's).
        optimizer = OptimizerSpec(name=config.optimizer, lr=0.01 if config.optimizer == "sgd" else 0.001, clip=optimizer.clip)
    if config.lr is not None:
        if not config.lr > 0:
            raise RunError(f"--lr must be positive, not {config.lr}")
        optimizer = replace(optimizer, lr=config.lr)
    epochs = config.epochs if config.epochs is not None else train_spec.epochs
    batch = config.batch if config.batch is not None else train_spec.batch
    if epochs < 1:
        raise RunError(f"--epochs must be at least 1, not {epochs}")
    if batch < 1:
        raise RunError(f"--batch must be at least 1, not {batch}")
    seed = config.seed if config.seed is not None else checkpoint_seed
    if seed is None:
        seed = train_spec.seed
    if seed is None:
        seed = int.from_bytes(os.urandom(3), "little")
    validation = config.validation if config.validation is not None else train_spec.validation
    return Settings(epochs, batch, validation, train_spec.patience, seed, optimizer)


def optimizer_text(optimizer: OptimizerSpec) -> str:
    """``sgd lr 0.01 momentum 0.9 nesterov`` — every setting the update uses, defaults included."""
    if optimizer.name == "sgd":
        text = f"sgd lr {optimizer.lr:g} momentum {optimizer.momentum:g}" + (" nesterov" if optimizer.nesterov else "")
    else:
        text = f"{optimizer.name} lr {optimizer.lr:g} beta1 {optimizer.beta1:g} beta2 {optimizer.beta2:g}"
    return text + (f" clip {optimizer.clip:g}" if optimizer.clip else "")


def train(config: TrainConfig, progress: Progress | None = None) -> TrainResult:
    """Train ``config.spec`` on ``config.data``, then evaluate it on the test split.

    Raises `RunError` (or its kinds `DataError`, `ModelFileError`) for what must be
    fixed before a run can start, and for a model that cannot be saved; a run that
    diverges or is interrupted returns, with ``stopped`` saying so.
    """
    from .datasets import Dataset, labels_for_loss, load_dataset

    progress = progress or Progress()
    spec = config.spec
    spec_file = spec.filename if os.path.isfile(spec.filename) else None
    check_paths({"SPEC": spec_file, "--data": data_path(config.data), "--resume": config.resume},
                {"--save": config.save, "--report": config.report, "--plot": config.plot})
    checkpoint = load_model(config.resume) if config.resume else None
    settings = settings_from(spec, config, checkpoint.meta.get("seed") if checkpoint else None)
    set_threads(config.threads)

    if isinstance(config.data, Dataset):
        data = config.data
    else:
        data = load_dataset(config.data, data_dir=config.data_dir, seed=settings.seed)
    check_not_inside(data.source, {"--save": config.save, "--report": config.report, "--plot": config.plot})
    input_shape = config.input_shape
    if spec.input_shape is None and input_shape is None:
        input_shape = tuple(data.input_shape)  # the data gives the input shape
    model = dsl.resolve(spec, input_shape)
    sample_shape = tuple(data.input_shape)
    data = fit_data(model, data)

    for split, samples in (("training", data.x_train), ("test", data.x_test)):
        if len(samples) == 0:
            raise RunError(f"{data.name} has no {split} samples", "give a data set with samples in both splits")
    x_train, y_train, x_val, y_val = split_validation(data, settings.validation, settings.seed)
    if settings.batch > len(x_train):
        progress.warning(_("batch {batch} is larger than the {samples} training samples: using batches of "
                           "{samples} (1 iteration per epoch)").format(batch=settings.batch,
                                                                        samples=number_text(len(x_train))))
        settings.batch = len(x_train)
    units = model.output_shape[-1]
    y_train = labels_for_loss(y_train, model.loss, data.num_classes, units=units)
    y_val = None if y_val is None else labels_for_loss(y_val, model.loss, data.num_classes, units=units)
    y_test = labels_for_loss(data.y_test, model.loss, data.num_classes, units=units)

    check_training_memory(model, settings)
    network = make_network(model, config.device, settings.seed, settings.optimizer)
    if data.task in ("classification", "binary"):
        network.measure_as_classifier()  # accuracy and a confusion matrix, whatever the loss
    history: list[dict] = History()  # each epoch's record encoded once, for the checkpoints
    first_epoch = 1
    if checkpoint is not None:
        first_epoch, history, notes = resume(config.resume, checkpoint, model, network, data.name)
        for note in notes:
            progress.warning(note)
        if first_epoch > settings.epochs:
            raise RunError(
                f"{config.resume} has already been trained for {plural(first_epoch - 1, 'epoch')}",
                f"ask for more to continue: --epochs {first_epoch - 1 + settings.epochs}",
            )

    rows = header_rows(config, spec, data, model, network, settings, checkpoint, first_epoch, len(x_train),
                       0 if x_val is None else len(x_val))
    if sample_shape != tuple(data.input_shape):
        how = "flattened" if len(model.input_shape) == 1 else "without their channel axis"
        rows[3] = (_("input"), f"{shape_text(model.input_shape)} ({shape_text(sample_shape)} samples {how}) "
                               f"→ {shape_text(model.output_shape)}")
    progress.header(rows)

    metric = metric_name(network.task)
    result = TrainResult("completed", Stop(), history, network, model, spec, data, settings, metric, first_epoch)
    result.report = {
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
    with progress.training(metric, x_val is not None, history, settings.epochs):
        stop = train_loop(network, settings, x_train, y_train, x_val, y_val, history, first_epoch, progress,
                          config.save, meta, spec)
    result.stop, result.stopped = stop, stop.reason
    result.report["stopped"] = stop.reason
    if stop.reason in ("diverged", "interrupted"):
        write_report(config.report, result.report)
        return result

    result.state_gradient_norms = state_gradient_norms(network)
    if result.state_gradient_norms:
        result.report["state_gradient_norms"] = result.state_gradient_norms
    result.test, result.confusion, result.class_names = evaluate_test(network, data, data.x_test, y_test)
    result.report["test"] = result.test
    if config.save:  # the model first: a report that cannot be written must not cost the model
        kept = f"; {config.save} still holds the checkpoint of epoch {len(history)}" if history else ""
        save_or_rescue(config.save, saved(spec, network, {**meta, "epochs_done": len(history), "history": history,
                                                          "test": result.test}), kept)
    try:
        write_report(config.report, result.report)
    except RunError as error:
        if config.save:
            error.message += f"; the model was saved to {config.save}"
        raise
    return result


def header_rows(config, spec, data, model, network, settings, checkpoint, first_epoch, train_count, val_count):
    batches = math.ceil(train_count / settings.batch)
    seed_text = _("{seed} (repeat this run with --seed {seed})").format(seed=settings.seed)
    if checkpoint is not None and config.seed is None and checkpoint.meta.get("seed") is not None:
        seed_text = _("{seed} (the checkpoint's: the same validation split and shuffling)").format(seed=settings.seed)
    resuming = [] if checkpoint is None else [(
        "resume",
        f"resuming from epoch {first_epoch} of {settings.epochs} ({config.resume}); --epochs includes the "
        f"{first_epoch - 1} done",
    )]
    return [
        (_("spec"), spec.filename),
        (_("data"), f"{data.name} ({data.source})"),
        (_("samples"), _("{train} train · {validation} validation · {test} test").format(
            train=number_text(train_count), validation=number_text(val_count), test=number_text(len(data.x_test)))),
        (_("input"), f"{shape_text(model.input_shape)} → {shape_text(model.output_shape)}"),
        (_("parameters"), number_text(model.total_params)),
        (_("training"), _("loss {loss} · {optimizer} · {epochs}").format(
            loss=model.loss, optimizer=optimizer_text(settings.optimizer),
            epochs=ngettext("{n} epoch", "{n} epochs", settings.epochs).format(n=number_text(settings.epochs)))),
        *resuming,
        (_("iterations"), _("{samples} / batch {batch} → {iterations} per epoch").format(
            samples=number_text(train_count), batch=settings.batch,
            iterations=ngettext("{n} iteration", "{n} iterations", batches).format(n=number_text(batches)))),
        (_("seed"), seed_text),
        (_("device"), network.device),
    ]


def reads_as(input_shape: tuple[int, ...], sample_shape: tuple[int, ...]) -> bool:
    """Whether a network of ``input_shape`` reads samples of ``sample_shape`` reshaped: as a
    vector (`input 784` on 28×28×1 images, as the course's MLP notebook does with
    ``x.reshape(-1, 784)``), or without a channel axis of 1 (`input 28x28` on 28×28×1:
    the image row by row, for a recurrent layer)."""
    input_shape, sample_shape = tuple(input_shape), tuple(sample_shape)
    if input_shape == sample_shape:
        return False
    flat = len(input_shape) == 1 and input_shape[0] == math.prod(sample_shape)
    return flat or (len(sample_shape) > 1 and sample_shape[-1] == 1 and input_shape == sample_shape[:-1])


def fit_data(model: Model, data, command: str = "train", trained_on: str | None = None):
    """The data set as the network takes it (reshaped where `reads_as` allows), then `check_fit`."""
    if reads_as(model.input_shape, data.input_shape):
        shape = tuple(model.input_shape)
        data = replace(
            data,
            x_train=data.x_train.reshape(len(data.x_train), *shape),
            x_test=data.x_test.reshape(len(data.x_test), *shape),
            input_shape=shape,
        )
    check_fit(model, data, command, trained_on)
    return data


def check_fit(model: Model, data, command: str = "train", trained_on: str | None = None) -> None:
    """The network's input and output must fit the data set, before any training
    (``command="train"``: the hint says how to change the spec) or evaluation of a saved
    model (``command="eval"``: the model is fixed, so the hint is about the data)."""
    if tuple(model.input_shape) != tuple(data.input_shape):
        kind = data.name.partition(":")[0]
        if command == "eval":  # a saved model cannot be changed: the data must fit it
            raise RunError(
                f"the model takes samples of {shape_text(model.input_shape)} but {data.name} samples are "
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
        check_classes(model, data)
    else:
        target = tuple(data.y_train.shape[1:]) or (1,)
        if out != target:
            raise RunError(
                f"the network gives {shape_text(out)} {'output' if math.prod(out) == 1 else 'outputs'} "
                f"but {data.name}'s targets are {shape_text(target)}",
                f"end the network with `dense {math.prod(target)}`",
            )


def check_classes(model: Model, data) -> None:
    """A classifier's last layer and loss must fit the number of classes; where the layer
    fits and the loss does not, the loss line is what to change."""
    out, classes = tuple(model.output_shape), data.num_classes
    outputs = f"{shape_text(out)} {'output' if math.prod(out) == 1 else 'outputs'}"
    if model.loss == "bce":
        if out != (1,) or classes != 2:
            if out == (classes,):  # the layer fits the classes: the loss line is what to change
                hint = "the network already ends with one output per class: write `loss cce` (or leave the loss line out)"
            else:
                hint = f"end with `dense {classes} softmax` and `loss cce`" if classes > 2 else "end with `dense 1 sigmoid`"
            raise RunError(
                f"loss bce needs one sigmoid output and two classes; the network gives "
                f"{outputs} and {data.name} has {classes} classes",
                hint,
            )
    elif out == (1,) and classes == 2 and model.loss == "cce":
        raise RunError(
            f"loss cce needs one output per class, but the network gives one output for {data.name}'s two classes",
            "with one sigmoid output write `loss bce` (or leave the loss line out); "
            "or end with `dense 2 softmax` to keep cce",
        )
    elif out != (classes,) and not (out == (1,) and classes == 2):
        raise RunError(
            f"the last layer gives {outputs} but {data.name} has {classes} classes",
            f"end the network with `dense {classes} softmax`",
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


def split_validation(data, fraction: float, seed: int):
    x, y = data.x_train, data.y_train
    if fraction <= 0:
        return x, y, None, None
    order = np.random.default_rng([seed, 1]).permutation(len(x))
    held = int(round(len(x) * fraction))
    if held < 1 or held >= len(x):
        raise RunError(f"validation {fraction} of {plural(len(x), 'sample')} leaves no data on one side")
    val, keep = order[:held], order[held:]
    return x[keep], y[keep], x[val], y[val]


def check_training_memory(model: Model, settings: Settings) -> None:
    """Refuse, before anything is allocated, a run that would not fit in memory (`nnrun.dsl.memory`)."""
    from nnrun.dsl.memory import training_memory

    from .limits import check_memory
    from .words import human_bytes

    need = training_memory(model, settings.batch, settings.optimizer)
    slots = {"adam": "Adam's m and v", "sgd": "the momentum's velocity"}[settings.optimizer.name]
    parts = [f"weights and gradients {human_bytes(need.weights)}"]
    if need.optimizer:
        parts.append(f"{slots} {human_bytes(need.optimizer)}")
    evaluating = need.evaluation_activations > need.training_activations
    parts.append(f"activations {human_bytes(need.activations)}"
                 + (f" when evaluating {EVAL_BATCH:,} samples at a time" if evaluating else ""))
    check_memory(need.total, f"training this network at batch {settings.batch} ({', '.join(parts)})",
                 "use a smaller network (fewer units or filters)"
                 + (", or a smaller --batch" if not evaluating and need.activations > need.weights else ""))


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM sets a flag the loop reads after each batch; a second one
    stops at once.  ``terminated`` tells which came (SIGTERM: exit status 143, not 130)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.terminated = False
        self.previous: dict = {}

    def __enter__(self):
        def handler(signum, frame):
            if self.requested:
                raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
            self.requested = True
            self.terminated = signum == signal.SIGTERM

        for number in self.SIGNALS:
            try:
                self.previous[number] = signal.signal(number, handler)
            except ValueError:  # not the main thread: leave the signals as they are
                pass
        return self

    def __exit__(self, *exc):
        for number, previous in self.previous.items():
            signal.signal(number, previous)
        return False


def train_loop(network, settings: Settings, x_train, y_train, x_val, y_val, history: list[dict], first_epoch: int,
               progress: Progress, save_path: str | None, meta: dict, spec: Spec) -> Stop:
    """Epochs of mini-batch steps on shuffled data; appends to ``history``; says why it stopped."""
    metric = metric_name(network.task)
    samples = len(x_train)
    batches = math.ceil(samples / settings.batch)
    best, waited = math.inf, 0
    monitored = "val_loss" if x_val is not None else "loss"
    for record in history:
        if record.get(monitored) is not None and record[monitored] < best:
            best, waited = record[monitored], 0
        else:
            waited += 1
    compiled = False  # the run's first step compiles the kernels (or loads them from the disk cache)
    limit = math.inf  # EXPLODED × the first batch's loss
    with StopRequest() as stop_request, np.errstate(**QUIET_FLOATS):
        for epoch in range(first_epoch, settings.epochs + 1):
            order = np.random.default_rng([settings.seed, epoch]).permutation(samples)
            progress.epoch_started(f"{epoch}/{settings.epochs}", batches)
            loss_sum = metric_sum = 0.0
            seen = 0
            # the compiling step is left out of the epoch's time and rate (when the epoch has others)
            left_out_seconds, left_out_samples = 0.0, 0
            started = shown = time.perf_counter()
            for batch in range(batches):
                index = order[batch * settings.batch : (batch + 1) * settings.batch]
                if compiled:
                    loss, metric_part = network.train_step(x_train[index], y_train[index])
                else:
                    with progress.compiling():
                        loss, metric_part = network.train_step(x_train[index], y_train[index])
                    compiled = True
                    if batches > 1:
                        left_out_seconds, left_out_samples = time.perf_counter() - started, len(index)
                if limit == math.inf and math.isfinite(loss):
                    limit = EXPLODED * max(loss, 1e-3)
                if not math.isfinite(loss) or loss > limit:
                    return Stop("diverged", epoch, batch + 1, loss)
                loss_sum += loss * len(index)
                metric_sum += metric_part
                seen += len(index)
                now = time.perf_counter()
                if now - shown >= PROGRESS_SECONDS or batch + 1 == batches:  # redrawing costs more than a small step
                    shown = now
                    rate = (seen - left_out_samples) / max(now - started - left_out_seconds, 1e-9)
                    progress.batch_done(batch + 1, loss_sum / seen, metric_sum / seen, rate)
                if stop_request.requested:
                    return Stop("interrupted", epoch, batch + 1, loss, stop_request.terminated)
            train_seconds = time.perf_counter() - started - left_out_seconds
            record = {
                "epoch": epoch,
                "loss": loss_sum / seen,
                metric: metric_sum / seen,
                "val_loss": None,
                f"val_{metric}": None,
            }
            if x_val is not None:
                result = network.evaluate(x_val, y_val, batch=EVAL_BATCH)
                record["val_loss"] = float(result["loss"])
                record[f"val_{metric}"] = float(result[metric])
            record["seconds"] = time.perf_counter() - started - left_out_seconds
            record["samples_per_second"] = (seen - left_out_samples) / train_seconds
            history.append(record)
            progress.epoch_done(record)
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
                return Stop("interrupted", epoch + 1, 0, terminated=stop_request.terminated)
    return Stop("completed", settings.epochs)


def evaluate_test(network, data, x, y, batch: int = EVAL_BATCH) -> tuple[dict, np.ndarray | None, list[str]]:
    """({"loss", metric} on (x, y), confusion matrix, class names); the matrix for up to 20 classes."""
    metric = metric_name(network.task)
    with np.errstate(**QUIET_FLOATS):
        scores = network.evaluate(x, y, batch=batch)
    test = {"loss": float(scores["loss"]), metric: float(scores[metric])}
    if network.task in ("classification", "binary") and data.num_classes <= 20:
        return test, *confusion(network, data, x, batch)
    return test, None, []


def confusion(network, data, x, batch: int = EVAL_BATCH) -> tuple[np.ndarray, list[str]]:
    """(matrix, class names): rows are the true classes, columns the predicted ones."""
    with np.errstate(**QUIET_FLOATS):
        predicted = predicted_classes(network.predict(x, batch=batch))
    true = np.asarray(data.y_test).reshape(len(x), -1)[:, 0].round().astype(np.int64)
    matrix = confusion_matrix(true, predicted, data.num_classes)
    names = list(data.class_names) if data.class_names else [str(i) for i in range(data.num_classes)]
    return matrix, names
