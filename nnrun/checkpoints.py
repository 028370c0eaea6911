"""What a training run writes, and reads back to continue: checkpoints, the report, `--resume`.

Every file is written atomically (`nnrun.model_io.atomic_write`): a crash or Ctrl-C
mid-write leaves the previous file as it was.  A model that cannot be written where
asked is saved in the temporary folder instead, and the error says where.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from nnrun import dsl
from nnrun.dsl.spec import Model, Spec

from .errors import RunError
from .model_io import ModelFileError, SavedModel, atomic_write, output_problem, save_model


def check_outputs(**paths: str | None) -> None:
    """``--save`` and ``--report`` must be writable before training starts, not after it ends."""
    for flag, path in paths.items():
        if path:
            problem = output_problem(path)
            if problem:
                raise RunError(f"--{flag} {path}: {problem}", "give a file in an existing folder you can write to")


def write_failure(error: OSError) -> str:
    return error.strerror or str(error)


def write_report(path: str | None, report: dict) -> None:
    """The run as JSON (`--report`), when asked for."""
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


def saved(spec: Spec, network, meta: dict) -> SavedModel:
    """The model as a file holds it; the optimizer state comes along so that --resume
    continues exactly, from a checkpoint or from a finished run."""
    return SavedModel(
        spec_text=spec.source,
        weights=network.weights(),
        meta=meta,
        optimizer_state=network.optimizer_state(),
    )


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


def resume(path: str, checkpoint: SavedModel, model: Model, network) -> tuple[int, list[dict]]:
    """Load a checkpoint into ``network``; return the next epoch's number and the history so far."""
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
