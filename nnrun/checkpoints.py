"""What a training run writes, and reads back to continue: checkpoints, the report, `--resume`.

Every file is written atomically (`nnrun.model_io.atomic_write`): a crash or Ctrl-C
mid-write leaves the previous file as it was.  A model that cannot be written where
asked is saved in the temporary folder instead, and the error says where.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from nnrun import dsl
from nnrun.dsl.shapes import describe
from nnrun.dsl.spec import Activation, Model, Spec

from .errors import RunError
from .model_io import History, ModelFileError, SavedModel, atomic_write, output_problem, save_model, strict_json


READ_WHAT = {"SPEC": "the spec", "--data": "the data set", "--resume": "the checkpoint", "--save": "the model"}


def check_paths(reads: dict[str, str | None], writes: dict[str, str | None]) -> None:
    """Before any work: every file a run writes (``--save``, ``--report``) must be writable,
    a regular file or a new name, and neither a file it reads (SPEC, ``--data``,
    ``--resume``) nor the other output — compared after following symlinks.  ``--save``
    equal to ``--resume`` is allowed: that is continuing a run in its own file."""
    for flag, path in writes.items():
        if path is None:
            continue
        problem = output_problem(path)
        if problem:
            raise RunError(f"{flag} {path!r}: {problem}" if not path.strip() else f"{flag} {path}: {problem}",
                           "give a file in an existing folder you can write to")
    taken: list[tuple[str, str, str]] = [(flag, path, os.path.realpath(path)) for flag, path in reads.items() if path]
    for flag, path in writes.items():
        if not path:
            continue
        real = os.path.realpath(path)
        for other_flag, other_path, other_real in taken:
            if real == other_real and {flag, other_flag} != {"--save", "--resume"}:
                raise RunError(
                    f"{flag} {path} is the same file as {other_flag} {other_path}: writing it would replace "
                    f"{READ_WHAT.get(other_flag, 'that file')}",
                    f"give {flag} another file name",
                )
        taken.append((flag, path, real))


def data_path(data) -> str | None:
    """The file or folder a ``--data`` argument reads, if it names one (names win: `xor` is the
    generated set even beside a file called xor)."""
    from .data.lookup import canonical_name

    if not isinstance(data, str) or canonical_name(data) is not None or data.partition(":")[0] in ("sine", "adding") \
            or data == "words":
        return None
    path = os.path.expanduser(data[len("text:"):] if data.startswith("text:") else data)
    return path if os.path.exists(path) else None


def check_not_inside(source: str, writes: dict[str, str | None]) -> None:
    """Outputs must not land in a folder read as data (an IDX folder, class folders of texts,
    the folder a named set was found in): they would replace or add to its files."""
    if not os.path.isdir(source):
        return
    folder = os.path.realpath(source)
    for flag, path in writes.items():
        if path and os.path.commonpath([folder, os.path.realpath(path)]) == folder:
            raise RunError(f"{flag} {path} is inside {source}, the folder the data set is read from: "
                           "writing there would change the data", f"give {flag} a file outside {source}")


def write_failure(error: OSError) -> str:
    return error.strerror or str(error)


def write_report(path: str | None, report: dict) -> None:
    """The run as JSON (`--report`), when asked for."""
    if not path:
        return
    try:
        atomic_write(path, lambda file: file.write(strict_json(report, indent=2).encode()))
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


def saved(spec: Spec, network, meta: dict) -> SavedModel:
    """The model as a file holds it; the optimizer state comes along so that --resume
    continues exactly, from a checkpoint or from a finished run."""
    return SavedModel(
        spec_text=spec.source,
        weights=network.weights(),
        meta=meta,
        optimizer_state=network.optimizer_state(),
    )


def load_weights_checked(network, saved_model: SavedModel, path: str) -> None:
    try:
        network.load_weights(saved_model.weights)
    except (ValueError, KeyError) as error:
        raise ModelFileError(
            f"the weights in {path} do not fit its spec ({error})",
            "the file may come from another spec or be damaged; train and save it again",
        ) from None


def resume(path: str, checkpoint: SavedModel, model: Model, network, data_name: str) -> tuple[int, list[dict], list[str]]:
    """Load a checkpoint into ``network``; return the next epoch's number, the history so far,
    and warnings.  The checkpoint must come from the same network (every layer, activation
    and option), the same loss and the same data set; a RunError names the first difference.
    Another optimizer is allowed: its state is dropped (a warning says so) and the weights continue."""
    differences = spec_differences(checkpoint, model, path)
    trained_on = checkpoint.meta.get("data")
    if trained_on is not None and trained_on != data_name:
        differences.append(f"the data set: {trained_on} in the checkpoint, {data_name} in this run")
    if differences:
        more = f"; and {len(differences) - 5} more" if len(differences) > 5 else ""
        what = "another data set" if differences[0].startswith("the data set") else "another spec"
        raise RunError(
            f"{path} was trained from {what}, so it cannot continue this one: {'; '.join(differences[:5])}{more}",
            "resume with the spec and data set it was saved from, or start afresh without --resume",
        )
    load_weights_checked(network, checkpoint, path)
    warnings = []
    saved_slots, own_slots = slot_names(checkpoint.optimizer_state), slot_names(network.optimizer_state())
    if checkpoint.optimizer_state and saved_slots != own_slots:
        warnings.append(f"{path} was trained with {optimizer_of(saved_slots)}, this run uses {optimizer_of(own_slots)}: "
                        f"the weights continue, the optimizer starts afresh (its state in the checkpoint is dropped)")
    elif checkpoint.optimizer_state:
        try:
            network.load_optimizer_state(checkpoint.optimizer_state)
        except ValueError as error:
            raise ModelFileError(f"the optimizer state in {path} does not fit its spec ({error})",
                                 "the file is damaged; train and save it again") from None
    history = History(checkpoint.meta.get("history", []))
    return len(history) + 1, history, warnings


def slot_names(state: dict) -> set[str]:
    """The optimizer's slots in a state: {"m", "v"} for Adam, {"velocity"} for SGD with momentum."""
    return {key.partition("/")[0] for key in state if "/" in key}


def optimizer_of(slots: set[str]) -> str:
    return {frozenset({"m", "v"}): "adam", frozenset({"velocity"}): "sgd with momentum",
            frozenset(): "plain sgd"}.get(frozenset(slots), "another optimizer")


def spec_differences(checkpoint: SavedModel, model: Model, path: str) -> list[str]:
    """What differs between the checkpoint's network and ``model``, in words, layer by layer."""
    other = checkpoint.model or dsl.resolve(dsl.parse(checkpoint.spec_text, path),
                                            tuple(checkpoint.meta.get("input_shape") or ()) or None)
    differences = []
    if tuple(other.input_shape) != tuple(model.input_shape):
        differences.append(f"the input: {_text(other.input_shape)} in the checkpoint, {_text(model.input_shape)} here")
    ours, theirs = model.layers, other.layers
    for index, (saved_layer, layer) in enumerate(zip(theirs, ours), start=1):
        where = f"layer {index} ({layer.name})"
        if saved_layer.name != layer.name:
            differences.append(f"{where}: named {saved_layer.name} in the checkpoint")
        elif type(saved_layer.layer) is not type(layer.layer):
            differences.append(f"{where}: {describe(saved_layer.layer)} in the checkpoint, {describe(layer.layer)} here")
        else:
            for field in dataclasses.fields(layer.layer):
                was, now = getattr(saved_layer.layer, field.name), getattr(layer.layer, field.name)
                if field.compare and was != now:
                    differences.append(f"{where}: {field.name} {_text(was)} in the checkpoint, {_text(now)} here")
    if len(theirs) != len(ours):
        differences.append(f"the number of layers: {len(theirs)} in the checkpoint, {len(ours)} here")
    if other.loss != model.loss:
        differences.append(f"the loss: {other.loss} in the checkpoint, {model.loss} here")
    return differences


def _text(value) -> str:
    """A statement's value as it is written: ``3x3``, ``relu``, ``leakyrelu 0.1``, ``l2 0.01``."""
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    if isinstance(value, Activation):
        return value.name + (f" {value.alpha:g}" if value.name == "leakyrelu" else "")
    if dataclasses.is_dataclass(value):  # the options: `l1 0 l2 0.01 dropconnect 0` → `l2 0.01`
        return " ".join(f"{field.name} {getattr(value, field.name)}" for field in dataclasses.fields(value)
                        if getattr(value, field.name)) or "none"
    return str(value)
