"""The commands that run a network, as the command line calls them: arguments in,
a library call (`nnrun.training`, `nnrun.use`), the result drawn, an exit status out.

    train     nnrun SPEC --data NAME          evaluate  nnrun eval MODEL --data NAME
    predict   nnrun predict MODEL INPUT       generate  nnrun generate MODEL --prompt TEXT --length N

Failures the user can fix arrive as `RunError` and are rendered by `nnrun.cli`.
"""
from __future__ import annotations

import argparse

import numpy as np
from rich.console import Console

from nnrun.dsl.spec import Model

from .errors import TERMINATED, RunError
from .i18n import _, ngettext, number_text, percent_text
from .words import class_label
from .specfile import load_spec, parse_input_shape
from .training import EVAL_BATCH, TrainConfig, TrainResult
from .views import (TrainingDisplay, best_epoch, number, render_confusion, render_curves, render_filters,
                    render_state_gradients)

INTERRUPTED = 130


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The training flags as a `TrainConfig` (absent flags: the spec's values)."""
    return TrainConfig(
        spec=load_spec(args.spec),
        data=args.data,
        data_dir=getattr(args, "data_dir", None),
        input_shape=parse_input_shape(getattr(args, "input", None)),
        epochs=getattr(args, "epochs", None),
        batch=getattr(args, "batch", None),
        lr=getattr(args, "lr", None),
        validation=getattr(args, "validation", None),
        optimizer=getattr(args, "optimizer", None),
        seed=getattr(args, "seed", None),
        device=getattr(args, "device", None) or "cpu",
        threads=getattr(args, "threads", None),
        save=getattr(args, "save", None),
        resume=getattr(args, "resume", None),
        report=getattr(args, "report", None),
        plot=getattr(args, "plot", None),
    )


def train(args: argparse.Namespace, out: Console, err: Console) -> int:
    """nnrun SPEC --data NAME: train, then evaluate on the test split."""
    from .training import train as train_run

    config = train_config(args)
    if config.plot:
        from .plots import check_picture_name

        check_picture_name(config.plot, "--plot")
    result = train_run(config, TrainingDisplay(out, err))
    return show_training(result, config, out, err)


def show_training(result: TrainResult, config: TrainConfig, out: Console, err: Console) -> int:
    """What follows the epoch table: why the run stopped, then the test result and what was learned."""
    stop, history, save_path = result.stop, result.history, config.save
    if result.stopped == "diverged":
        kept = f"; {save_path} still holds the model of epoch {len(history)}" if save_path and history else ""
        raise RunError(
            f"the loss became {number(stop.loss)} in epoch {stop.epoch}, batch {stop.batch}"
            f"{'' if stop.loss != stop.loss or abs(stop.loss) == float('inf') else ', a million times its first value'}"
            f": training diverged{kept}",
            f"lower the learning rate, for example --lr {result.settings.optimizer.lr / 10:g}",
            status=1,
        )
    if result.stopped == "interrupted":
        what = _("terminated (SIGTERM)") if stop.terminated else _("interrupted")
        where = _("after epoch {epoch}").format(epoch=stop.epoch - 1) if stop.batch == 0 else \
            _("in epoch {epoch}, batch {batch}").format(epoch=stop.epoch, batch=stop.batch)
        if save_path and history:
            err.print(_("{what} {where}: {path} holds the model of epoch {epoch}; continue with --resume {path}").format(
                what=what, where=where, path=save_path, epoch=history[-1]["epoch"]), markup=False)
        else:
            err.print(_("{what} {where}; nothing was saved (use --save FILE to keep a checkpoint after each epoch)")
                      .format(what=what, where=where), markup=False)
        return TERMINATED if stop.terminated else INTERRUPTED
    if result.stopped == "early_stopping":
        patience = result.settings.patience
        out.print(_("early stopping: the validation loss has not improved for {epochs}").format(
            epochs=ngettext("{n} epoch", "{n} epochs", patience).format(n=patience)), markup=False)
    render_curves(out, result.history, result.metric)
    if config.plot:
        from .plots import save_curves

        save_curves(config.plot, result.history, result.metric,
                    best_epoch(result.history, "val_loss" if result.history and
                               result.history[0].get("val_loss") is not None else "loss"),
                    f"{result.spec.filename} on {result.data.name}")
        out.print(_("wrote the learning curves to {path}").format(path=config.plot), markup=False)
    if result.state_gradient_norms:  # a recurrent network: show back-propagation through time, unrolled
        render_state_gradients(out, result.state_gradient_norms)
    show_test(out, result.test, len(result.data.x_test), result.confusion, result.class_names)
    show_first_filters(result.network, result.model, out)
    if save_path:
        out.print(_("saved the model to {path}").format(path=save_path), markup=False)
    return 0


def show_test(out: Console, test: dict, samples: int, confusion: np.ndarray | None, class_names: list[str]) -> None:
    metric = "accuracy" if "accuracy" in test else "mbe"
    value = percent_text(test[metric]) if metric == "accuracy" else number(test[metric])
    count = ngettext("{n} sample", "{n} samples", samples).format(n=number_text(samples))
    out.print("[bold]" + _("test") + f"[/]  {_('loss')} {number(test['loss'])}  {_(metric)} {value}  ({count})")
    if confusion is not None:
        render_confusion(out, confusion, class_names)


def show_first_filters(network, model: Model, out: Console) -> None:
    """What the first 2-D convolution learned: its filters, drawn as small pictures."""
    for info in model.layers:
        if info.type == "conv2d":
            render_filters(out, info.name, network.weights()[f"{info.name}/kernel"])
            return


def evaluate(args: argparse.Namespace, out: Console, err: Console) -> int:
    """nnrun eval MODEL --data NAME: the saved model on a data set's test split."""
    from .use import evaluate_saved

    evaluation = evaluate_saved(args.model, args.data, getattr(args, "data_dir", None), getattr(args, "device", None),
                                getattr(args, "batch", None) or EVAL_BATCH)
    out.print(f"{args.model}: {evaluation.data.name} test split", markup=False)
    show_test(out, evaluation.test, evaluation.samples, evaluation.confusion, evaluation.class_names)
    return 0


def predict(args: argparse.Namespace, out: Console, err: Console) -> int:
    """nnrun predict MODEL INPUT: classes and probabilities for each sample."""
    from rich.table import Table

    from .use import open_model, predict_file

    saved_model, model, network = open_model(args.model, getattr(args, "device", None))
    outputs = predict_file(network, model, args.input)
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
            label = lambda k: class_label(names, k)  # noqa: E731
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


def generate(args: argparse.Namespace, out: Console, err: Console) -> int:
    """nnrun generate MODEL --prompt TEXT --length N: each character shown as soon as it is drawn;
    Ctrl-C keeps what is on screen."""
    from rich.text import Text

    from .use import generate_text

    temperature = 1.0 if args.temperature is None else args.temperature
    characters = generate_text(args.model, args.prompt, args.length, temperature, args.seed)
    out.print(Text(args.prompt, style="bold"), end="", soft_wrap=True)
    try:
        for character in characters:
            out.print(Text(character), end="", soft_wrap=True)
    except KeyboardInterrupt:
        out.print()
        return INTERRUPTED
    out.print()
    return 0


def apply(args: argparse.Namespace, out: Console, err: Console) -> int:
    """nnrun apply STATEMENT --matrix …: one layer by hand (`nnrun.apply`), drawn or as JSON."""
    from .apply import apply as apply_statement
    from .apply import KERNELS as KERNEL_NAMES
    from .apply import data_sample, kernel_matrix, parse_matrix, read_image
    from .checkpoints import check_paths
    from .views import render_application

    if args.matrix and args.sample is not None:
        raise RunError("--sample picks a picture of --data; with --matrix there is nothing to pick")
    given = [name for name, value in (("--matrix", args.matrix), ("--image", args.image), ("--data", args.data)) if value]
    if len(given) != 1:
        raise RunError("give the numbers with --matrix (once per channel), or a picture with --image FILE or "
                       "--data NAME --sample K" + (f"; not {' and '.join(given)} together" if given else ""),
                       'e.g. nnrun apply "pool max 2" --matrix "1 1 2 4; 5 6 7 8; 3 2 1 0; 1 2 3 4"')
    check_paths({"--image": args.image}, {"--png": args.png})
    if args.png:
        from .plots import check_picture_name

        check_picture_name(args.png, "--png")
    if args.matrix:
        matrices = [parse_matrix(text) for text in args.matrix]
        if len({matrix.shape for matrix in matrices}) > 1:
            raise RunError("every --matrix (one per channel) must have the same size: "
                           + ", ".join(f"{m.shape[0]}×{m.shape[1]}" for m in matrices))
    elif args.image:
        matrices = [read_image(args.image)]
    else:
        if args.sample is None:
            raise RunError("--data needs --sample K: which picture of the test split", f"e.g. --data {args.data} --sample 0")
        matrices = [data_sample(args.data, args.sample, getattr(args, "data_dir", None))]
    kernels = [kernel_matrix(text) for text in args.kernel or []]
    bias = np.zeros(1) if args.bias is None else parse_matrix(args.bias, "--bias").reshape(-1)
    application = apply_statement(args.statement, matrices, kernels, float(bias[0]) if np.size(bias) == 1 else bias)
    application.kernel_name = ", ".join(name for name in (args.kernel or []) if name.strip().lower() in KERNEL_NAMES)
    if args.png:
        from .plots import save_before_after

        save_before_after(args.png, application)
    if args.json:
        out.print_json(data=application.as_json())
    else:
        render_application(out, application, pictures=not args.matrix)
    if args.png:
        out.print(f"wrote {args.png}", markup=False)
    return 0


def show(args: argparse.Namespace, out: Console, err: Console) -> int:
    """nnrun show MODEL --data NAME [--sample K] | --input FILE: every layer's output for a sample."""
    from .checkpoints import check_paths
    from .use import show_samples
    from .views import fits_a_table, render_inside, render_values_table

    if (args.data is None) == (args.input is None):
        from .model_io import load_model

        trained_on = load_model(args.model).meta.get("data") or "NAME"
        raise RunError("give the samples with --data NAME (and --sample K) or --input FILE, one of the two",
                       f"e.g. nnrun show {args.model} --data {trained_on} --sample 0")
    check_paths({"MODEL": args.model, "--input": args.input}, {"--png": args.png})
    if args.png:
        from .plots import check_picture_name

        check_picture_name(args.png, "--png")
    inside = show_samples(args.model, args.data, args.sample, args.input, getattr(args, "data_dir", None))
    maps = [(name, outputs[0]) for name, _, outputs in inside.layers if outputs.ndim == 4]
    if maps and inside.samples[0].ndim == 3:
        maps.insert(0, ("input", inside.samples[0]))
    if args.png and len(maps) < 2:
        raise RunError(f"--png draws feature maps, and {args.model} has no convolution or pooling layer",
                       "leave out --png: the values of its layers are printed")
    if len(inside.samples) > 1 and fits_a_table(inside):
        render_values_table(out, inside)
    else:
        for index in range(len(inside.samples)):
            render_inside(out, inside, index)
    if args.png:
        from .plots import save_feature_maps

        save_feature_maps(args.png, maps, inside.labels[0])
        out.print(f"wrote the feature maps to {args.png}", markup=False)
    return 0


def quiz(args: argparse.Namespace, out: Console, err: Console) -> int:
    """nnrun quiz: exercises drawn from a seed, as a sheet, JSON, GIFT or Moodle XML."""
    from .checkpoints import check_paths
    from .model_io import atomic_write
    from .quiz import make_quiz
    from .quiz_formats import FORMATS

    check_paths({}, {"--out": args.out})
    seed = args.seed if args.seed is not None else 0
    items = make_quiz(args.topic, args.count, seed, args.level, args.multiple_choice)
    text = FORMATS[args.format](items, {"seed": seed, "level": args.level, "topic": args.topic})
    if args.out:
        try:
            atomic_write(args.out, lambda file: file.write(text.encode("utf-8")))
        except OSError as error:
            raise RunError(f"could not write {args.out}: {error.strerror or error}", status=1) from None
        out.print(f"wrote {len(items)} exercises to {args.out}", markup=False)
    else:
        out.file.write(text)
    return 0


def grade(args: argparse.Namespace, out: Console, err: Console) -> int:
    """nnrun grade QUIZ.json ANSWERS.json: right or wrong per item, the worked solution of the wrong
    ones, the score; --json in Gradescope's results.json shape."""
    import json

    from .i18n import _
    from .limits import regular_file
    from .quiz import answer_text, grade as grade_items

    def read(path: str, what: str):
        regular_file(path, what)
        try:
            with open(path, encoding="utf-8") as file:
                return json.loads(file.read(64 * 2**20))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
            raise RunError(f"{path} is not a readable JSON file ({error})", f"give {what}") from None

    quiz_data = read(args.quiz, "the quiz written by `nnrun quiz --format json`")
    answers = read(args.answers, 'the answers as {"id": value, …}')
    if not isinstance(quiz_data, dict) or not isinstance(quiz_data.get("items"), list) or not all(
            isinstance(item, dict) and {"id", "kind", "answer", "solution"} <= set(item) for item in quiz_data["items"]):
        raise RunError(f"{args.quiz} is not a quiz written by `nnrun quiz --format json`")
    if not isinstance(answers, dict):
        raise RunError(f"{args.answers} must hold one object: {{\"id\": value, …}}")
    results = grade_items(quiz_data["items"], answers)
    score = sum(1 for _item, _given, right in results if right)
    if args.json:
        tests = [{"name": item["id"], "score": int(right), "max_score": 1,
                  "output": _("right") if right else _("wrong: the answer is {answer}").format(
                      answer=answer_text(item["answer"], item["kind"])) + "\n" + "\n".join(item["solution"])}
                 for item, _given, right in results]
        out.print_json(data={"score": score, "max_score": len(results), "tests": tests})
        return 0
    for item, given, right in results:
        mark = "✓" if right else "✗"
        shown = _("(blank)") if given is None else str(given)
        out.print(f"{mark} {item['id']}: {shown}" + ("" if right else "  → " + answer_text(item["answer"], item["kind"])),
                  markup=False, highlight=False)
        if not right:
            for line in item["solution"]:
                out.print(f"      {line}", markup=False, highlight=False)
    out.print(_("score: {score}/{total} ({percent:.0%})").format(score=score, total=len(results),
                                                                 percent=score / len(results)), markup=False)
    return 0
