"""The command line: parse the arguments, call the library, render, return a status.

    nnrun SPEC --data NAME|PATH [options]     train, then evaluate on the test split
    nnrun summary SPEC [--input SHAPE] [--explain] [--json]
    nnrun check SPEC [--input SHAPE]
    nnrun eval MODEL --data NAME|PATH         nnrun predict MODEL INPUT
    nnrun data list | data fetch NAME         nnrun generate MODEL --prompt TEXT --length N

Exit status: 0 success, 1 run-time failure, 2 bad spec, data or arguments,
130 interrupted.  No input ever ends in a traceback; ``NNRUN_DEBUG=1`` prints
the traceback of an internal error.  Training, eval, predict and generate live
in `nnrun.commands` (which call `nnrun.training` and `nnrun.use`), the data
commands in `nnrun.datacmd`; they are imported only when used, so `summary` and
`check` never import numba.  Nothing below this module imports it.
"""
from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import signal
import sys
import traceback

from rich.console import Console

from nnrun.dsl import SpecError, resolve

from .console import fatal, make_consoles, say
from .errors import TERMINATED, RunError, Terminated
from .i18n import set_language
from .specfile import load_spec, parse_input_shape
from .words import plural

COMMANDS = ("summary", "check", "apply", "eval", "predict", "show", "quiz", "grade", "data", "generate")
DEVICES = ("cpu", "cuda", "auto")
INTERRUPTED = 130
BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for `yes | head -1`
RUN_COMMANDS = {"train": "train", "eval": "evaluate", "predict": "predict", "generate": "generate",
                "apply": "apply", "show": "show", "quiz": "quiz", "grade": "grade"}  # in nnrun.commands


def main(argv: list[str] | None = None, *, out: Console | None = None, err: Console | None = None,
         _cache_cleared: bool = False) -> int:
    """Run one command; return its exit status (the console script exits with it)."""
    default_out, default_err = make_consoles() if out is None or err is None else (None, None)
    out, err = out or default_out, err or default_err
    argv = sys.argv[1:] if argv is None else [str(arg) for arg in argv]
    previous = _on_sigterm(_terminate)
    try:
        args = parse_arguments(argv)
        set_language(getattr(args, "lang", None))
        return dispatch(args, out, err)
    except _Help as request:
        try:
            say(out, request.text.rstrip())
        except OSError as error:
            return fatal(err, f"input/output error: {error.strerror or error}", status=1)
        return 0
    except _Usage as problem:
        if problem.usage:
            say(err, problem.usage.rstrip())
        return fatal(err, problem.message, hint=problem.hint)
    except SpecError as error:
        say(err, error.render())
        return 2
    except RunError as error:  # also DataError and ModelFileError
        return fatal(err, error.message, hint=error.hint, status=error.status)
    except Terminated:
        return fatal(err, "terminated (SIGTERM)", status=TERMINATED)
    except KeyboardInterrupt:
        return fatal(err, "interrupted", status=INTERRUPTED)
    except BrokenPipeError:  # `nnrun … | head -3`: the reader has gone; end quietly, as `yes | head` does
        _silence_stdout()
        return BROKEN_PIPE
    except MemoryError:
        return fatal(err, "the machine ran out of memory", status=1,
                     hint="use a smaller --batch, fewer units or filters, or a smaller data set")
    except OSError as error:  # the output cannot be written (a full disk), a file went away mid-run
        where = f" ({error.filename})" if error.filename else ""
        return fatal(err, f"input/output error: {error.strerror or error}{where}", status=1,
                     hint="check the free disk space and the files and streams named")
    except Exception as error:  # the last line of defence: a message, never a traceback
        from .networks import clear_kernel_cache, damaged_kernel_cache

        if not _cache_cleared and damaged_kernel_cache(error):
            removed = clear_kernel_cache()
            say(err, f"warning: the cache of compiled kernels was damaged ({type(error).__name__}: {error}); "
                     f"cleared it ({removed} files) and starting again, compiling the kernels anew", style="yellow")
            return main(argv, out=out, err=err, _cache_cleared=True)
        if os.environ.get("NNRUN_DEBUG") == "1":
            say(err, traceback.format_exc().rstrip())
        summary = str(error).splitlines()[0] if str(error) else ""
        return fatal(
            err,
            f"internal error: {type(error).__name__}{': ' + summary if summary else ''}",
            hint="this is a bug in nnrun; please report it with the command you ran "
            "(NNRUN_DEBUG=1 shows the traceback)",
            status=1,
        )
    finally:
        if previous is not None:
            _on_sigterm(previous)


def _terminate(signum, frame):
    raise Terminated


def _on_sigterm(handler):
    """Install ``handler`` for SIGTERM; return the one it replaces (None off the main thread)."""
    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, AttributeError):  # not the main thread, or no SIGTERM on this system
        return None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's final flush does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests)
        pass


def dispatch(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.command == "summary":
        return summary_command(args, out, err)
    if args.command == "check":
        return check_command(args, out, err)
    if args.command == "data":
        from . import datacmd

        return (datacmd.list_data if args.data_command == "list" else datacmd.fetch_data)(args, out, err)
    from . import commands

    command = getattr(commands, RUN_COMMANDS[args.command], None)
    if command is None:
        return fatal(err, f"`nnrun {args.command}` is not available in this version", status=1)
    return command(args, out, err)


# ------------------------------------------------------------------ the calculator


def summary_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    from .summary import render_summary, summary_json

    model = resolve(load_spec(args.spec), parse_input_shape(args.input))
    if args.json:
        out.print_json(data=summary_json(model))
        for warning in model.warnings:
            say(err, f"warning: {warning}", style="yellow")
    else:
        render_summary(model, out, explain=args.explain)
    return 0


def check_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    spec = load_spec(args.spec)
    shape = parse_input_shape(args.input)
    if spec.input_shape is None and shape is None:
        say(out, f"OK {spec.filename}: {plural(len(spec.layers), 'layer')} parsed; shapes not checked "
                 "(no input shape: add an `input` line or pass --input, e.g. --input 28x28x1)")
        return 0
    model = resolve(spec, shape)
    say(out, f"OK {spec.filename}: {plural(len(model.layers), 'layer')}, {plural(model.total_params, 'parameter')}")
    for warning in model.warnings:
        say(err, f"warning: {warning}", style="yellow")
    return 0


# ------------------------------------------------------------------ arguments


class _Help(Exception):
    def __init__(self, text: str) -> None:
        self.text = text


class _Usage(Exception):
    def __init__(self, message: str, usage: str = "", hint: str | None = None) -> None:
        self.message, self.usage, self.hint = message, usage, hint


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing and exiting, so `main` renders everything."""

    def error(self, message: str):
        raise _Usage(message, self.format_usage())

    def print_help(self, file=None) -> None:
        raise _Help(self.format_help())

    def exit(self, status: int = 0, message: str | None = None):
        if status:
            raise _Usage(message or "bad arguments", self.format_usage())
        raise _Help(message or "")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    top = command_parser()
    if not argv:
        raise _Usage("give a spec to train, or a command", top.format_usage(),
                     hint="`nnrun summary specs/mlp.net`, or `nnrun --help` for everything")
    if argv[0] in ("-h", "--help"):
        raise _Help(top.format_help())
    if argv[0] == "help":  # `nnrun help`, `nnrun help summary`
        if len(argv) > 1 and argv[1] in COMMANDS:
            top.parse_args([argv[1], "--help"])
        if len(argv) > 1 and argv[1] == "train":
            raise _Help(train_parser().format_help())
        raise _Help(top.format_help())
    if argv[0] == "--version":
        from . import __version__

        raise _Help(f"nnrun {__version__}")
    if argv[0] in COMMANDS:
        return top.parse_args(argv)
    if argv[0] == "train":  # `nnrun train SPEC --data …` is `nnrun SPEC --data …`
        argv = argv[1:]
    else:
        _reject_misspelt_command(argv[0], top)
    args = train_parser().parse_args(argv)
    args.command = "train"
    return args


def _reject_misspelt_command(word: str, top: argparse.ArgumentParser) -> None:
    """`nnrun sumary x.net` would otherwise read 'sumary' as an inline spec."""
    if os.path.exists(word) or not re.fullmatch(r"[a-z]+", word):
        return
    close = difflib.get_close_matches(word, COMMANDS, n=1, cutoff=0.75)
    if close:
        raise _Usage(f"unknown command '{word}'", top.format_usage(), hint=f"did you mean '{close[0]}'?")


def train_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nnrun [train]",
        description="Train the network of SPEC on a data set, then evaluate it on the test split.",
        epilog=f"other commands: {', '.join(COMMANDS)} (nnrun COMMAND --help)",
    )
    _spec_argument(parser)
    parser.add_argument("--data", required=True, metavar="NAME|PATH", help="mnist, fashion-mnist, xor, xo, …, an IDX directory or an .npz")
    _data_dir_argument(parser)
    parser.add_argument("--epochs", type=_positive_int, metavar="N", help="override the spec's `train epochs` (with --resume: the total, epochs already done included)")
    parser.add_argument("--batch", type=_positive_int, metavar="N", help="override the spec's `train batch`")
    parser.add_argument("--lr", type=_positive_number, metavar="X", help="override the optimizer's learning rate")
    parser.add_argument("--validation", type=_fraction, metavar="F", help="hold out this fraction of the training split to validate on (override the spec's `train validation`), e.g. 0.1")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), help="override the spec's optimizer")
    parser.add_argument("--seed", type=_seed, metavar="N", help="random seed (weights, shuffling, dropout); with --resume, the checkpoint's")
    _device_argument(parser)
    parser.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads for the compiled kernels")
    parser.add_argument("--save", metavar="FILE", help="save the trained model (.npz)")
    parser.add_argument("--report", metavar="FILE.json", help="write the run as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="write the learning curves as a picture: .png, .svg or .pdf (needs matplotlib)")
    parser.add_argument("--resume", metavar="FILE", help="continue training a model saved with --save, from its next epoch")
    _input_argument(parser)
    _lang_argument(parser)
    return parser


def command_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nnrun",
        description="A neural-network teaching engine.  `nnrun SPEC --data NAME` (or `nnrun train "
        "SPEC --data NAME`) trains (see `nnrun train --help`); the commands below do the rest.",
        epilog="nnrun --version prints the version; nnrun help COMMAND (or nnrun COMMAND --help) explains a command. "
        "Exit status: 0 success, 1 run-time failure, 2 bad spec, data or arguments, 130 interrupted.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    summary = subcommands.add_parser("summary", help="shapes, parameters and MACs of a spec (the calculator)")
    _spec_argument(summary)
    _input_argument(summary)
    summary.add_argument("--explain", action="store_true", help="show the arithmetic behind every number")
    summary.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    _lang_argument(summary)

    check = subcommands.add_parser("check", help="validate a spec")
    _spec_argument(check)
    _input_argument(check)
    _lang_argument(check)

    apply = subcommands.add_parser(
        "apply", help="apply one statement to numbers typed in (check a hand computation)",
        description="Apply one statement — conv, pool, an activation or dense — to a matrix typed in, or to a "
        "picture, and write out the sum behind each output cell.",
        epilog='example:\n  nnrun apply "conv 1 3x3" \\\n    --matrix "1 1 1 0 0; 0 1 1 1 0; 0 0 1 1 1; 0 0 1 1 0; 0 1 1 0 0" \\\n'
        '    --kernel "1 0 1; 0 1 0; 1 0 1"',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument("statement", metavar="STATEMENT", help='one statement: "conv 1 3x3 [stride S] [pad same|P] [relu]", '
                       '"pool max 2", "relu", "dense 2"')
    apply.add_argument("--matrix", action="append", metavar="ROWS",
                       help='the numbers, rows separated by ";", e.g. "1 2 3; 4 5 6"; once per channel')
    apply.add_argument("--kernel", action="append", metavar="ROWS|NAME",
                       help="conv: one per filter and input channel (or one for all); dense: the in×units weights; "
                       "or a named kernel: identity, sobel-x, sobel-y, laplacian, box-blur, gaussian-blur, sharpen, emboss")
    apply.add_argument("--bias", metavar="B", help="one number, or one per filter/unit separated by spaces (default 0)")
    apply.add_argument("--image", metavar="FILE", help="a picture instead of --matrix: an .npy array, PNG or JPEG (grey)")
    apply.add_argument("--data", metavar="NAME", help="a picture from a data set's test split (with --sample K)")
    apply.add_argument("--sample", type=_seed, metavar="K", help="which sample of --data (0 is the first)")
    _data_dir_argument(apply)
    apply.add_argument("--png", metavar="FILE", help="also write the pictures before and after as a PNG (needs matplotlib)")
    apply.add_argument("--json", action="store_true", help="print the input, the padded input, the output and the cells as JSON")

    evaluate = subcommands.add_parser("eval", help="evaluate a saved model on a data set's test split")
    evaluate.add_argument("model", metavar="MODEL", help="a model saved with --save")
    evaluate.add_argument("--data", required=True, metavar="NAME|PATH", help="the data set whose test split to use: a name, an IDX directory or an .npz")
    _data_dir_argument(evaluate)
    _device_argument(evaluate)
    evaluate.add_argument("--batch", type=_positive_int, metavar="N", help="samples per forward pass (memory only; the result is the same)")

    predict = subcommands.add_parser("predict", help="classify samples with a saved model")
    predict.add_argument("model", metavar="MODEL", help="a model saved with --save")
    predict.add_argument("input", metavar="INPUT", help="an .npy array (one sample or a batch) or an IDX images file (plain or .gz)")
    _device_argument(predict)
    predict.add_argument("--top", type=_positive_int, metavar="K", help="show the K most likely classes (default 3)")

    show = subcommands.add_parser(
        "show", help="what each layer of a saved model makes of a sample (feature maps, values)",
        description="Run a sample through a saved model one layer at a time and show each layer's output: feature maps "
        "for convolution and pooling layers, values for the others, then the prediction.",
    )
    show.add_argument("model", metavar="MODEL", help="a model saved with --save")
    show.add_argument("--data", metavar="NAME|PATH", help="take the sample from this data set's test split")
    show.add_argument("--sample", type=_seed, metavar="K", help="which sample (default: all of a split of at most 16, else 0)")
    show.add_argument("--input", metavar="FILE", help="or from a file: an .npy array or an IDX images file")
    _data_dir_argument(show)
    show.add_argument("--png", metavar="FILE", help="also write the feature maps as a picture (needs matplotlib)")

    quiz = subcommands.add_parser("quiz", help="randomised exercises with worked answers (shapes, parameters …)")
    quiz.add_argument("--topic", default="all", choices=("all", "output-size", "params", "conv", "pool", "dense", "rnn",
                                                          "iterations", "network"), help="what the exercises are about")
    quiz.add_argument("--count", type=_positive_int, default=10, metavar="N", help="how many exercises (default 10)")
    quiz.add_argument("--seed", type=_seed, metavar="S", help="the same seed gives the same sheet (default 0): one per student")
    quiz.add_argument("--level", type=int, choices=(1, 2, 3), default=1,
                      help="1: one layer, simple numbers; 2: strides, padding, channels; 3: whole networks")
    quiz.add_argument("--multiple-choice", action="store_true", help="options, the wrong ones being the classic mistakes")
    quiz.add_argument("--format", choices=("text", "json", "gift", "moodle-xml"), default="text",
                      help="a sheet with the answers at the end, JSON (for nnrun grade), Moodle GIFT or Moodle XML")
    quiz.add_argument("--out", metavar="FILE", help="write to FILE instead of the terminal")
    _lang_argument(quiz)

    grade = subcommands.add_parser("grade", help="grade answers against a quiz written with --format json")
    grade.add_argument("quiz", metavar="QUIZ.json", help="the quiz, from nnrun quiz --format json")
    grade.add_argument("answers", metavar="ANSWERS.json", help='the answers: {"id": value, …}; shapes as 13x13x32 or [13, 13, 32]')
    grade.add_argument("--json", action="store_true", help="print Gradescope's results.json (score, max_score, tests)")
    _lang_argument(grade)

    data = subcommands.add_parser("data", help="where data sets are found; fetch one")
    data_commands = data.add_subparsers(dest="data_command", metavar="list|fetch", required=True)
    _data_dir_argument(data_commands.add_parser("list", help="list the data sets and where they are"))
    fetch = data_commands.add_parser("fetch", help="download a data set into the cache")
    fetch.add_argument("name", metavar="NAME", help="a data set name from `nnrun data list`, e.g. mnist")
    _data_dir_argument(fetch)

    generate = subcommands.add_parser("generate", help="sample text from a saved sequence model")
    generate.add_argument("model", metavar="MODEL", help="a text model saved with --save (trained on --data text:FILE)")
    generate.add_argument("--prompt", required=True, metavar="TEXT", help="the text to continue; only characters the model saw")
    generate.add_argument("--length", required=True, type=_positive_int, metavar="N", help="how many characters to add")
    generate.add_argument("--temperature", type=float, metavar="T", help="1 (default): the model's probabilities; lower: closer to the most likely character")
    generate.add_argument("--seed", type=_seed, metavar="N", help="random seed for the sampling (the same seed repeats the text)")
    return parser


def _spec_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="a .net file, or an inline spec: \"conv 32 3x3 relu; pool max 2; dense 10 softmax\"")


def _input_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", metavar="SHAPE", help="input shape when the spec has no `input` line, e.g. 28x28x1")


def _lang_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=("en", "fr"), help="the language (default: from LANG, else English)")


def _data_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", metavar="DIR", help="look for data sets here first")


def _device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=DEVICES, help="where to run (default: cpu)")


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _seed(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    if value >= 2**32:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number from 0 to 4,294,967,295")
    return value


def _positive_int(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a fraction from 0 up to (not including) 1, like 0.1")
    return value


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive finite number, like 0.01")
    return value
