"""text → `Spec`: the `.net` grammar, a Transformer to frozen dataclasses, and its errors.

Three steps, each failing with a `SpecError` that points at the fault:

1. Characters.  Control characters anywhere (a binary file) are refused first.
2. Syntax.  The LALR grammar in ``grammar.lark`` says which word may follow which.
   A failure is explained from what Lark expected at that point: a near-miss
   keyword (``cnov`` → ``conv``), a known mistake matched with ``match_examples``
   (``dense`` without units), a look-alike character (``28×28``).
3. Values.  `_ToSpec` builds the dataclasses of ``spec.py``, checking every
   number against its allowed range and every option for duplicates, with the
   exact token to underline.  ``repeat`` blocks are expanded here.

Shapes (kernel bigger than input, rank mismatches) are checked later by ``resolve``.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, NamedTuple

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, VisitError

from .errors import SpecError
from .spec import (
    Activation,
    ActivationLayer,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    LossSpec,
    OptimizerSpec,
    Pool,
    Position,
    Recurrent,
    Regularization,
    Spec,
    TrainSpec,
)
from .suggest import ascii_lookalike, char_name, did_you_mean

__all__ = ["parse", "parse_file"]

# Limits: beyond these a spec is a typo, not a network a course would train.
MAX_UNITS = 1_000_000  # units of dense/rnn, filters of conv
MAX_SIZE = 100_000_000  # one dimension of a kernel, stride, padding or input
MAX_INPUT_VALUES = 100_000_000  # product of the input's dimensions
MAX_REPEAT = 1000
MAX_LAYERS = 10_000  # after expanding `repeat`
MAX_NESTING = 32  # `repeat` blocks inside each other
MAX_FILE_BYTES = 1_000_000  # also for a spec given inline or embedded in a model file
MAX_LINES = 20_000  # parsing is linear but not fast: 20,000 lines take about 2 s


# ----------------------------------------------------------------------- entry points


def parse(text: str, filename: str = "<inline>") -> Spec:
    """Parse the text of a `.net` spec. Raises `SpecError` with a position on any fault."""
    _check_size(text, filename)
    source = _Source(text, filename)
    source.check_characters()
    try:
        tree = _parser().parse(source.text)
    except UnexpectedInput as exc:
        # A look-alike letter inside a word (Cyrillic 'о' in `cоnv`) first shows as an
        # unknown word; the character itself is the fault to point at.
        raise _non_ascii_on_line(exc.line, source) or _syntax_error(exc, source) from None
    source.check_nesting()
    try:
        return _ToSpec(source).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, SpecError):
            raise exc.orig_exc from None
        raise


def parse_file(path: str | os.PathLike[str]) -> Spec:
    """Read and parse a `.net` file; a missing, unreadable or binary file is a `SpecError`."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(f"no such file: {name}", hint="check the path, or pass the spec inline in quotes") from None
    except IsADirectoryError:
        raise SpecError(f"{name} is a directory, not a spec file") from None
    except PermissionError:
        raise SpecError(f"cannot read {name}: permission denied") from None
    except OSError as exc:
        raise SpecError(f"cannot read {name}: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(
            f"{name} is larger than {MAX_FILE_BYTES:,} bytes; a spec is a few lines of text",
            hint="is this a data file? pass data with --data",
        )
    return parse(_decode(data, name), name)


def _check_size(text: str, name: str) -> None:
    """Refuse, before parsing, a text no course network needs (a model file may carry any text)."""
    lines = text.count("\n") + 1
    if len(text) > MAX_FILE_BYTES or lines > MAX_LINES:
        raise SpecError(
            f"{name} is {len(text):,} characters on {lines:,} lines; a spec has at most "
            f"{MAX_FILE_BYTES:,} characters and {MAX_LINES:,} lines",
            hint="a spec is a few lines of text; use `repeat N { … }` for long stacks of layers",
        )


def _decode(data: bytes, name: str) -> str:
    """UTF-8 text, or a `SpecError` at the first byte that is not."""
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column, _ = _byte_position(data, nul)
        raise SpecError(
            f"{name} looks like a binary file (a NUL byte), not a spec",
            Position(name, line, column),
            hint="a spec is a text file of statements like `dense 10 softmax`",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column, source_line = _byte_position(data, exc.start)
        raise SpecError(
            f"{name} is not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
            Position(name, line, column),
            hint="save the file as UTF-8 (or plain ASCII)",
            source_line=source_line,
        ) from None


def _byte_position(data: bytes, offset: int) -> tuple[int, int, str]:
    """1-based line and column (in characters) of a byte offset, and that line's text."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    line_end = data.find(b"\n", offset)
    line_end = len(data) if line_end < 0 else line_end
    column = len(data[line_start:offset].decode("utf-8", "replace")) + 1
    text = data[line_start:line_end].decode("utf-8", "replace").rstrip("\r")
    return data.count(b"\n", 0, offset) + 1, column, text


# ----------------------------------------------------------------------- the grammar


class _NamesEverywhere:
    """Post-lexer that only widens the contextual lexer.

    With NAME lexable in every parser state, a keyword is matched as a whole
    word (``reluu`` is one unknown word, not ``relu`` + ``u``) and an unknown
    word reaches the parser as a token we can suggest a fix for.
    """

    always_accept = ("NAME", "SHAPE", "BADSHAPE")

    def process(self, stream):
        return stream


@cache
def _parser() -> Lark:
    """The grammar, built once per process; cached beside it like a .pyc when writable."""
    cache_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__", "grammar.lark.cache")
    try:
        os.makedirs(os.path.dirname(cache_file), exist_ok=True)
    except OSError:
        pass  # a read-only install: Lark fails to read or write the cache, quietly, and builds (0.2 s)
    return Lark.open(
        "grammar.lark",
        rel_to=__file__,
        parser="lalr",
        propagate_positions=True,
        postlex=_NamesEverywhere(),
        cache=cache_file,
    )


# ----------------------------------------------------------------------- the source text


class _Source:
    """The text being parsed, its lines, and errors that quote them."""

    def __init__(self, text: str, filename: str) -> None:
        self.original = text
        self.filename = filename
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.text = text[1:] if text.startswith("\ufeff") else text  # BOM from Windows editors
        self.lines = self.text.split("\n")  # as Lark counts lines: on "\n" only

    def error(self, message: str, line: int, column: int, width: int = 1, hint: str | None = None) -> SpecError:
        source_line = self.lines[line - 1] if 1 <= line <= len(self.lines) else None
        if source_line is not None:
            width = max(1, min(width, len(source_line) - column + 1))
        return SpecError(
            message, Position(self.filename, line, column), hint=hint, source_line=source_line, width=width
        )

    def error_at(self, token: Token, message: str, hint: str | None = None) -> SpecError:
        return self.error(message, token.line, token.column, len(token), hint)

    def position(self, offset: int) -> tuple[int, int]:
        line = self.text.count("\n", 0, offset) + 1
        return line, offset - (self.text.rfind("\n", 0, offset) + 1) + 1

    def check_characters(self) -> None:
        """Control characters (other than tab, newline, form feed) mean a binary file."""
        control = _CONTROL.search(self.text)
        if control is not None:
            line, column = self.position(control.start())
            raise self.error(
                f"unexpected control character {char_name(control.group())}",
                line,
                column,
                hint="a spec is plain text; is this a binary file?",
            )

    def braces(self) -> list[tuple[str, int, int]]:
        """Every `{` and `}` outside comments, with its nesting depth after it."""
        found, depth = [], 0
        for match in _BRACE_OR_COMMENT.finditer(self.text):
            if match.group() == "{":
                depth += 1
            elif match.group() == "}":
                depth -= 1
            else:
                continue
            found.append((match.group(), match.start(), depth))
        return found

    def depth_before(self, offset: int) -> int:
        """How many blocks are open just before ``offset``."""
        return sum(1 if brace == "{" else -1 for brace, at, _ in self.braces() if at < offset)

    def check_nesting(self) -> None:
        for brace, offset, depth in self.braces():
            if brace == "{" and depth > MAX_NESTING:
                line, column = self.position(offset)
                raise self.error(f"repeat blocks are nested more than {MAX_NESTING} deep", line, column)

    def unclosed_brace(self) -> tuple[int, int] | None:
        open_offsets: list[int] = []
        for brace, offset, _ in self.braces():
            if brace == "{":
                open_offsets.append(offset)
            elif open_offsets:
                open_offsets.pop()
        return self.position(open_offsets[-1]) if open_offsets else None

    def end_of_code(self, line: int) -> tuple[int, int]:
        """Just after the last code character on ``line`` or, if it has none, on a line before."""
        for number in range(min(line, len(self.lines)), 0, -1):
            code = self.lines[number - 1].split("#", 1)[0].rstrip()
            if code:
                return number, len(code) + 1
        return 1, 1

    def statement_word(self, line: int, column: int) -> str | None:
        """The keyword of the statement that ``line:column`` is in (None at a statement's start)."""
        if not 1 <= line <= len(self.lines):
            return None
        before = re.split(r"[;{]", self.lines[line - 1][: column - 1])[-1]
        words = _WORD.findall(re.sub(r"^\s*[A-Za-z_]\w*\s*:", "", before))
        return words[0] if words else None

    def word_before(self, line: int, column: int) -> str | None:
        if not 1 <= line <= len(self.lines):
            return None
        words = _WORD.findall(self.lines[line - 1][: column - 1].split("#", 1)[0])
        return words[-1] if words else None


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BRACE_OR_COMMENT = re.compile(r"[{}]|#[^\n]*")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ----------------------------------------------------------------------- value ranges


@dataclass(frozen=True)
class _Range:
    """Allowed values of a number, said the way the error message says it."""

    low: float
    high: float = math.inf
    low_open: bool = False  # low itself is not allowed
    high_open: bool = False
    whole: bool = False

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        low = f"{self.low:,}" if self.whole else f"{self.low:g}"
        high = f"{self.high:,}" if self.whole else f"{self.high:g}"
        if self.whole and self.high != math.inf:
            return f"a whole number from {low} to {high}"
        if self.whole:
            return f"a whole number ≥ {low}"
        lower = f"> {low}" if self.low_open else f"≥ {low}"
        if self.high == math.inf:
            return f"a number {lower}"
        return f"a number {lower} and {'<' if self.high_open else '≤'} {high}"


UNITS = _Range(1, MAX_UNITS, whole=True)
SIZE = _Range(1, MAX_SIZE, whole=True)
PADDING = _Range(0, MAX_SIZE, whole=True)
FRACTION = _Range(0, 1, high_open=True)  # dropout, dropconnect, validation, momentum, β
POSITIVE = _Range(0, low_open=True)  # learning rate, ε, clip
NON_NEGATIVE = _Range(0)  # l1, l2, leaky slope
COUNT = _Range(1, 1_000_000, whole=True)  # epochs, batch
REPEATS = _Range(1, MAX_REPEAT, whole=True)

# Options that take one number: the word in messages and the allowed range.
_NUMBER_OPTIONS: dict[str, tuple[str, _Range]] = {
    "l1": ("l1 (the L1 penalty λ)", NON_NEGATIVE),
    "l2": ("l2 (the L2 penalty λ)", NON_NEGATIVE),
    "dropconnect": ("dropconnect (the probability of dropping a weight)", FRACTION),
    "momentum": ("momentum", FRACTION),
    "epsilon": ("epsilon", POSITIVE),
    "lr": ("the learning rate lr", POSITIVE),
    "beta1": ("beta1", FRACTION),
    "beta2": ("beta2", FRACTION),
    "clip": ("clip (the largest gradient norm)", POSITIVE),
    "epochs": ("epochs", COUNT),
    "batch": ("the batch size", COUNT),
    "validation": ("validation (the fraction held out)", FRACTION),
    "patience": ("patience", _Range(0, 1_000_000, whole=True)),
    "seed": ("seed", _Range(0, 2**32 - 1, whole=True)),
}


# ----------------------------------------------------------------------- tree → dataclasses


class _Option(NamedTuple):
    """One option of a statement, with where it was written (for duplicate errors)."""

    key: str
    value: Any
    line: int
    column: int
    width: int


@dataclass(frozen=True)
class _Setting:
    kind: str  # input, loss, optimizer, train
    value: Any


@dataclass(frozen=True)
class _Block:
    layers: tuple  # an expanded `repeat`


@dataclass(frozen=True)
class _Statement:
    body: Any  # a layer, a _Setting or a _Block
    label: Token | None
    pos: Position
    width: int  # of the statement's first line, for carets under the whole statement


@v_args(meta=True)
class _ToSpec(Transformer):
    """Builds `Spec` from the parse tree; every method checks what the grammar cannot."""

    def __init__(self, source: _Source) -> None:
        super().__init__()
        self.source = source

    # ---------------------------------------------------------------- numbers

    def _number(self, token: Token, what: str, allowed: _Range) -> float:
        text = str(token)
        if allowed.whole and not re.fullmatch(r"-?[0-9]+", text):
            raise self.source.error_at(token, f"{what} must be a whole number, got '{text}'", f"{what} is {allowed}")
        if allowed.whole and len(text.lstrip("-")) > 18:
            raise self.source.error_at(token, f"{what} is far too large: {allowed}")
        value = int(text) if allowed.whole else float(text)
        if not math.isfinite(value):
            raise self.source.error_at(token, f"{what} must be a finite number, got '{text}'")
        if value not in allowed:
            hint = None
            if allowed is FRACTION and 1 <= value < 100 and value == int(value):  # `dropout 50`: a percentage
                hint = f"did you mean {value / 100:g}? A rate is a fraction: {value:g} % is {value / 100:g}"
            raise self.source.error_at(token, f"{what} must be {allowed}, got {text}", hint)
        return value

    def _sizes(self, token: Token, what: str, allowed: _Range = SIZE) -> tuple[int, ...]:
        """``3x3`` → (3, 3), ``5`` → (5,); each dimension checked, the caret under the bad one."""
        sizes, column = [], token.column
        for part in str(token).split("x"):
            piece = Token(token.type, part, line=token.line, column=column)
            sizes.append(int(self._number(piece, what, allowed)))
            column += len(part) + 1
        return tuple(sizes)

    # ---------------------------------------------------------------- options

    def _option(self, key: str, meta, value: Any) -> _Option:
        width = meta.end_column - meta.column if meta.end_line == meta.line else 1
        return _Option(key, value, meta.line, meta.column, width)

    def __default__(self, data, children, meta):
        # Options that take one number, checked against _NUMBER_OPTIONS.
        what, allowed = _NUMBER_OPTIONS[data]
        return self._option(data, meta, self._number(children[-1], what, allowed))

    def stride(self, meta, children):
        return self._option("stride", meta, self._sizes(children[0], "stride"))

    def pad(self, meta, children):
        (value,) = children
        if value.type in ("VALID", "SAME"):
            return self._option("pad", meta, str(value))
        return self._option("pad", meta, self._sizes(value, "padding", PADDING))

    def act(self, meta, children):
        name = str(children[0])
        alpha = Activation("leakyrelu").alpha
        if len(children) > 1:
            alpha = self._number(children[-1], "the leaky ReLU slope alpha", NON_NEGATIVE)
        return self._option("activation", meta, Activation(name, alpha))

    def bias(self, meta, children):
        return self._option("bias", meta, str(children[0]) == "true")

    def _options(self, statement: str, children: list) -> dict[str, Any]:
        """Options by key; a flag word (``sequences``, ``nesterov``) is a token; duplicates are errors."""
        seen: dict[str, _Option] = {}
        for child in children:
            if isinstance(child, Token):
                child = _Option(child.lower(), True, child.line, child.column, len(child))
            if child.key in seen:
                first = seen[child.key]
                what = "an activation" if child.key == "activation" else f"'{child.key}'"
                raise self.source.error(
                    f"{statement} already has {what} (column {first.column})",
                    child.line,
                    child.column,
                    child.width,
                    hint="give each option once: remove one of them",
                )
            seen[child.key] = child
        return {key: option.value for key, option in seen.items()}

    @staticmethod
    def _regularization(options: dict[str, Any]) -> Regularization:
        return Regularization(**{key: options[key] for key in ("l1", "l2", "dropconnect") if key in options})

    # ---------------------------------------------------------------- layers

    def dense(self, meta, children):
        units, *rest = children
        options = self._options("dense", rest)
        return Dense(
            units=int(self._number(units, "units", UNITS)),
            activation=options.get("activation"),
            regularization=self._regularization(options),
            use_bias=options.get("bias", True),
        )

    def conv(self, meta, children):
        filters, kernel, *rest = children
        options = self._options("conv", rest)
        return Conv(
            filters=int(self._number(filters, "filters", UNITS)),
            kernel=self._sizes(kernel, "kernel size"),
            stride=options.get("stride", (1,)),
            padding=options.get("pad", "valid"),
            activation=options.get("activation"),
            regularization=self._regularization(options),
            use_bias=options.get("bias", True),
        )

    def pool(self, meta, children):
        mode, size, *rest = children
        if size.type == "GLOBAL":
            return Pool(mode=str(mode), kernel=None, is_global=True)
        options = self._options("pool", rest)
        return Pool(
            mode=str(mode),
            kernel=self._sizes(size, "pool size"),
            stride=options.get("stride"),
            padding=options.get("pad", "valid"),
        )

    def flatten(self, meta, children):
        return Flatten()

    def dropout(self, meta, children):
        return Dropout(rate=self._number(children[0], "the dropout rate", FRACTION))

    def batchnorm(self, meta, children):
        options = self._options("batchnorm", children)
        return BatchNorm(**options)

    def rnn(self, meta, children):
        units, *rest = children
        options = self._options("rnn", rest)
        return Recurrent(
            cell="rnn",
            units=int(self._number(units, "units", UNITS)),
            activation=options.get("activation", Activation("tanh")),
            return_sequences=options.get("sequences", False),
            use_bias=options.get("bias", True),
        )

    def gated(self, meta, children):
        cell, units, *rest = children
        options = self._options(str(cell), rest)
        return Recurrent(
            cell=str(cell),
            units=int(self._number(units, "units", UNITS)),
            return_sequences=options.get("sequences", False),
            use_bias=options.get("bias", True),
        )

    # ---------------------------------------------------------------- settings

    def input(self, meta, children):
        (token,) = children
        shape = self._sizes(token, "input size")
        if len(shape) > 4:
            raise self.source.error_at(
                token,
                f"input has {len(shape)} dimensions; nnrun knows at most 4",
                hint="vectors N, sequences TxF, images HxWxC, volumes DxHxWxC",
            )
        if math.prod(shape) > MAX_INPUT_VALUES:
            raise self.source.error_at(
                token, f"input has {math.prod(shape):,} values per sample; at most {MAX_INPUT_VALUES:,}"
            )
        return _Setting("input", shape)

    def loss(self, meta, children):
        return _Setting("loss", LossSpec(name=str(children[0])))

    def optimizer(self, meta, children):
        name, *rest = children
        options = self._options(f"optimizer {name}", rest)
        if "epsilon" in options:  # `eps` and `epsilon` are one option
            options["eps"] = options.pop("epsilon")
        if name == "sgd":
            options.setdefault("lr", 0.01)  # Keras's SGD default
        return _Setting("optimizer", OptimizerSpec(name=str(name), **options))

    def train(self, meta, children):
        return _Setting("train", TrainSpec(**self._options("train", children)))

    # ---------------------------------------------------------------- statements

    def stmt(self, meta, children):
        label = children[0] if isinstance(children[0], Token) and children[0].type == "LABEL" else None
        body = children[-1]
        if isinstance(body, _Option):  # an activation on its own line
            body = ActivationLayer(body.value)
        pos = Position(self.source.filename, meta.line, meta.column)
        width = meta.end_column - meta.column if meta.end_line == meta.line else len("repeat")
        if label is not None:
            name = label.rstrip(":").strip()
            if not isinstance(body, (_Setting, _Block)):
                body = replace(body, label=name)
            else:
                kind = body.kind if isinstance(body, _Setting) else "repeat"
                raise self.source.error(
                    f"only layers take a label; '{kind}' is not a layer", label.line, label.column, len(name)
                )
            label = Token("LABEL", name, line=label.line, column=label.column)
        if isinstance(body, _Setting):
            if body.kind != "input":
                body = _Setting(body.kind, replace(body.value, pos=pos))
        elif not isinstance(body, _Block):
            body = replace(body, pos=pos)
        return _Statement(body, label, pos, width)

    def repeat(self, meta, children):
        count_token, *statements = children
        count = int(self._number(count_token, "the repeat count", REPEATS))
        block: list = []
        for statement in statements:
            if isinstance(statement.body, _Setting):
                raise self._at_statement(
                    statement,
                    f"only layers can be repeated; '{statement.body.kind}' is a setting",
                    hint=f"move '{statement.body.kind}' out of the repeat block",
                )
            if statement.label is not None:
                raise self.source.error_at(
                    statement.label,
                    f"label '{statement.label}' inside repeat would name {count} layers",
                    hint="labels must be unique: label the layers after expanding the block by hand,\n"
                    "or drop the label",
                )
            block.extend(statement.body.layers if isinstance(statement.body, _Block) else [statement.body])
        if not block:
            raise self.source.error(
                "the repeat block is empty", meta.line, meta.column, len("repeat"), hint="e.g. `repeat 2 { conv 10 3x3 relu }`"
            )
        if count * len(block) > MAX_LAYERS:
            raise self.source.error_at(
                count_token, f"repeat {count} of {len(block)} layers makes {count * len(block):,} layers; at most {MAX_LAYERS:,}"
            )
        return _Block(tuple(block) * count)

    def _at_statement(self, statement: _Statement, message: str, hint: str | None = None) -> SpecError:
        return self.source.error(message, statement.pos.line, statement.pos.column, statement.width, hint)

    def start(self, meta, statements):
        settings: dict[str, _Statement] = {}
        labels: dict[str, Token] = {}
        layers: list = []
        for statement in statements:
            body = statement.body
            if isinstance(body, _Setting):
                if body.kind in settings:
                    first = settings[body.kind].pos.line
                    raise self._at_statement(
                        statement,
                        f"a second '{body.kind}' statement; the first is on line {first}",
                        hint=f"give '{body.kind}' once",
                    )
                if body.kind == "input" and layers:
                    raise self._at_statement(
                        statement,
                        "input must come before the layers",
                        hint=f"the first layer is on line {layers[0].pos.line}: move the input line to the top",
                    )
                settings[body.kind] = statement
                continue
            if statement.label is not None:
                if str(statement.label) in labels:
                    first = labels[str(statement.label)]
                    raise self.source.error_at(
                        statement.label,
                        f"label '{statement.label}' is already used on line {first.line}",
                        hint="labels name layers, so each must be unique",
                    )
                labels[str(statement.label)] = statement.label
            layers.extend(body.layers if isinstance(body, _Block) else [body])
            if len(layers) > MAX_LAYERS:
                raise self._at_statement(statement, f"the spec has more than {MAX_LAYERS:,} layers")
        if not layers:
            raise SpecError(
                "the spec has no layers",
                Position(self.source.filename, 1, 1),
                hint="write at least one, e.g. `dense 10 softmax`",
            )
        value = {kind: statement.body.value for kind, statement in settings.items()}
        return Spec(
            input_shape=value.get("input"),
            layers=tuple(layers),
            loss=value.get("loss"),
            optimizer=value.get("optimizer", OptimizerSpec()),
            train=value.get("train", TrainSpec()),
            source=self.source.original,
            filename=self.source.filename,
            input_pos=settings["input"].pos if "input" in settings else None,
        )


# ----------------------------------------------------------------------- syntax errors

_ACTIVATIONS = ("RELU", "SIGMOID", "TANH", "SOFTMAX", "LINEAR", "LEAKYRELU")
_ACTIVATION_WORDS = tuple(name.lower() for name in _ACTIVATIONS)
# The words a statement can start with, grouped as the hint for an unknown one lists them
# (one group a line, so the hint fits an 80-column terminal).
_STATEMENT_GROUPS = (
    ("a layer", ("dense", "conv", "pool", "flatten", "dropout", "batchnorm", "rnn", "lstm", "gru")),
    ("an activation", _ACTIVATION_WORDS),
    ("a setting", ("input", "loss", "optimizer", "train")),
    ("or a block", ("repeat N { … }",)),
)
_STATEMENTS = tuple(words.split()[0] for _, group in _STATEMENT_GROUPS for words in group)
_END = ("_SEP", "$END", "RBRACE")

_STATEMENT_EXAMPLE = {
    "dense": "dense 10 relu",
    "rnn": "rnn 32",
    "lstm": "lstm 32",
    "gru": "gru 32",
}
_OPTION_EXAMPLE = {
    "l1": "l1 0.0001",
    "l2": "l2 0.0001",
    "dropconnect": "dropconnect 0.5",
    "stride": "stride 2",
    "pad": "pad same",
    "momentum": "momentum 0.9",
    "epsilon": "epsilon 0.001",
    "eps": "eps 1e-7",
    "lr": "lr 0.001",
    "beta1": "beta1 0.9",
    "beta2": "beta2 0.999",
    "clip": "clip 1.0",
    "epochs": "epochs 10",
    "batch": "batch 64",
    "validation": "validation 0.1",
    "patience": "patience 3",
    "seed": "seed 42",
    "alpha": "alpha 0.1",
    "leakyrelu": "leakyrelu 0.1",
}
# Each option once with its value missing, plain and with `=`: the parser states in which
# a value is expected.  (The state after `l1` is the same in `dense` as in `conv`.)
_OPTION_CONTEXT = {
    "l1": "dense 10", "l2": "dense 10", "dropconnect": "dense 10",
    "stride": "conv 8 3", "pad": "conv 8 3", "momentum": "batchnorm", "epsilon": "batchnorm",
    "eps": "batchnorm", "lr": "optimizer adam", "beta1": "optimizer adam", "beta2": "optimizer adam",
    "clip": "optimizer adam", "epochs": "train", "batch": "train", "validation": "train",
    "patience": "train", "seed": "train", "alpha": "leakyrelu",
}  # fmt: skip
_MISSING_VALUE = [f"{context} {option}{eq}" for option, context in _OPTION_CONTEXT.items() for eq in ("", " =")]

# Known mistakes, recognised by the parser state they fail in (Lark's `match_examples`):
# (message, hint) with {statement}, {example}, {option}, {option_example}, {label} filled in.
_KNOWN_MISTAKES = [
    (("{statement} needs the number of units", "e.g. `{example}`"), ["dense", "rnn", "lstm", "gru"]),
    (("conv needs the number of filters, then the kernel size", "e.g. `conv 32 3x3 relu`"), ["conv"]),
    (("conv needs a kernel size after the number of filters", "e.g. `conv 32 3x3 relu`"), ["conv 32"]),
    (("pool needs a mode: max or avg", "e.g. `pool max 2`"), ["pool"]),
    (("pool needs a size, or 'global'", "e.g. `pool max 2` or `pool avg global`"), ["pool max", "pool avg"]),
    (("dropout needs a rate", "e.g. `dropout 0.5` drops half of the units while training"), ["dropout"]),
    (("input needs a shape", "e.g. `input 28x28x1` or `input 784`"), ["input"]),
    (("loss needs a name: cce, bce, mse or mae", "e.g. `loss cce`"), ["loss"]),
    (("optimizer needs a name: sgd or adam", "e.g. `optimizer adam lr 0.001`"), ["optimizer"]),
    (("repeat needs a count", "e.g. `repeat 2 {{ conv 10 3x3 relu }}`"), ["repeat"]),
    (("after `repeat N` comes a block in braces", "e.g. `repeat 2 {{ conv 10 3x3 relu }}`"), ["repeat 2"]),
    (("label '{label}' needs a layer after it", "e.g. `c1: conv 6 5x5 relu`"), ["c1:"]),
    (("'{option}' needs a value", "e.g. `{option_example}`"), _MISSING_VALUE),
]


def _syntax_error(exc: UnexpectedInput, source: _Source) -> SpecError:
    """Explain a Lark failure: where, what was expected, and how to fix it."""
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(exc, source)
    token = getattr(exc, "token", None)
    # `accepts` replays the parser on each candidate, so it leaves out what LALR's merged
    # states would only have allowed elsewhere (a `}` outside any block).
    expected = set(getattr(exc, "accepts", None) or getattr(exc, "expected", None) or ())
    if token is None or token.type in ("$END", "<EOF>"):
        line, column = source.end_of_code(len(source.lines))
        width = 1
    elif token.type == "_SEP" and token == "\n":
        line, column = source.end_of_code(token.line)
        width = 1
    else:
        line, column, width = token.line, token.column, len(token)
    statement = source.statement_word(line, column)
    where = f" in {statement}" if statement else ""

    def error(message: str, hint: str | None = None) -> SpecError:
        return source.error(message, line, column, width, hint)

    if token is not None and token.type == "BADSHAPE":
        return error(f"incomplete size '{token}'", "sizes are numbers joined by x, e.g. `28x28x1` or `3x3`")
    if token is not None and token.type == "RBRACE" and source.depth_before(token.start_pos) == 0:
        return error("'}' closes no block", "a block starts with `repeat N {`")
    if "RBRACE" in expected and (token is None or token.type == "$END"):
        opened = source.unclosed_brace()
        if opened is not None:
            return source.error("this '{' is never closed", *opened, hint="end the repeat block with '}'")
    keywords = [_keyword(name) for name in _terminal_order(expected) if _keyword(name)]
    at_statement_start = "DENSE" in expected
    word = str(token) if token is not None and token.type == "NAME" else None
    spaced_size = word is not None and re.fullmatch(r"[xX][0-9xX]*", word) is not None  # `28 x 28`, `28X28`
    size_hint = "write sizes without spaces, with a lower-case x: `28x28x1`"
    if word is not None and keywords:
        if word in _STATEMENTS and word not in _ACTIVATION_WORDS and expected & set(_END) and not at_statement_start:
            return error(
                f"'{word}' starts a second statement on this line",
                "put each statement on its own line, or separate statements with ';'",
            )
        # The end of the statement goes unsaid: a word was written where a keyword may stand.
        hint = did_you_mean(word, keywords) or (size_hint if spaced_size else _expected(expected - set(_END)))
        noun = _kind_of_word(expected, statement)
        if noun == "option" and word in _all_keywords():
            return error(f"'{word}' does not belong{where}", hint)
        where = "" if noun in _NOUNS else where
        return error(f"unknown {noun} '{word}'{where}", hint)
    known = _known_mistake(exc)
    if known is not None:
        option = source.word_before(line, column) or ""
        fill = {
            "statement": statement or "",
            "example": _STATEMENT_EXAMPLE.get(statement or "", ""),
            "option": option,
            "option_example": _OPTION_EXAMPLE.get(option, f"{option} 1"),
            "label": option,
        }
        message, hint = known
        return error(message.format(**fill), hint.format(**fill))
    if spaced_size:
        return error(f"unexpected '{word}'{where}", size_hint)
    return error(f"unexpected {_describe_token(token)}{where}", _expected(expected))


def _known_mistake(exc: UnexpectedInput) -> tuple[str, str] | None:
    """Lark's `match_examples`, with parser states compared by number only.

    Lark also compares stack depths, so `dense` alone on line 5, or inside a repeat
    block, would not match the example `dense`; the LALR state is what says where
    in the grammar the parser stood.
    """
    if exc.state is None:
        return None

    def parse_example(text: str) -> None:
        failure = _example_failure(text)
        if failure is not None:
            raise failure.with_traceback(None)

    exc.state = exc.state.position
    return exc.match_examples(parse_example, _KNOWN_MISTAKES, use_accepts=False)


@cache
def _example_failure(text: str) -> UnexpectedInput | None:
    """How a known-mistake example fails (parsed once per process)."""
    try:
        _parser().parse(text)
    except UnexpectedInput as failure:
        failure.state = failure.state.position
        return failure
    return None


def _non_ascii_on_line(line: int, source: _Source) -> SpecError | None:
    """The first non-ASCII character outside a comment on ``line``, as an error."""
    if not 1 <= line <= len(source.lines):
        return None
    code = source.lines[line - 1].split("#", 1)[0]
    for index, char in enumerate(code):
        if not char.isascii():
            return _non_ascii_error(char, line, index + 1, source)
    return None


def _non_ascii_error(char: str, line: int, column: int, source: _Source) -> SpecError:
    lookalike = ascii_lookalike(char)
    message = f"non-ASCII character {char_name(char)}"
    if lookalike == "":
        hint = "it is invisible: delete it"
    elif lookalike == " ":
        hint = "it looks like a space: type a plain space"
    elif lookalike is not None:
        hint = f"it looks like '{lookalike}': type the ASCII '{lookalike}' instead"
    else:
        hint = "outside comments a spec is plain ASCII"
    return source.error(message, line, column, 1, hint)


def _bad_character(exc: UnexpectedCharacters, source: _Source) -> SpecError:
    char = source.text[exc.pos_in_stream]
    statement = source.statement_word(exc.line, exc.column)

    def error(message: str, hint: str | None = None) -> SpecError:
        return source.error(message, exc.line, exc.column, 1, hint)

    if not char.isascii():
        return _non_ascii_error(char, exc.line, exc.column, source)
    if char in "\"'`":
        return error(f"unexpected quote {char}", "names and numbers are written bare: `optimizer adam lr 0.001`")
    if char in ",*":
        return error(f"unexpected '{char}'", "write sizes with an x: `3x3`, `28x28x1`")
    if char in "()[]":
        return error(f"unexpected '{char}'", "options are a word and a value: `stride 2` or `stride=2`")
    if char == ":":
        return error("unexpected ':'", "a label comes first and is one word: `c1: conv 6 5x5 relu`")
    where = f" in {statement}" if statement else ""
    return error(f"unexpected character '{char}'{where}", _expected(set(exc.allowed)) if exc.allowed else None)


_NOUNS = ("statement", "loss", "optimizer", "pooling mode")


def _kind_of_word(expected: set[str], statement: str | None) -> str:
    """What an unknown word was taken to be, from what the parser expected there."""
    for terminal, noun in zip(("DENSE", "CCE", "SGD", "MAX"), _NOUNS):
        if terminal in expected:
            return noun
    return "option" if statement else "word"


@cache
def _terminal_literals() -> dict[str, str]:
    """Terminal name → its literal text, for keyword terminals (DENSE → 'dense')."""
    literals = {}
    for terminal in _parser().terminals:
        if terminal.pattern.type == "str":
            literals[terminal.name] = terminal.pattern.value
    return literals


def _keyword(name: str) -> str | None:
    literal = _terminal_literals().get(name)
    return literal if literal and literal[0].isalpha() else None


@cache
def _all_keywords() -> frozenset[str]:
    return frozenset(filter(None, map(_keyword, _terminal_literals())))


def _terminal_order(names: set[str]) -> list[str]:
    """Terminals in the order the grammar declares them (dense before conv …)."""
    order = {terminal.name: i for i, terminal in enumerate(_parser().terminals)}
    return sorted(names, key=lambda name: order.get(name, len(order)))


def _expected(expected: set[str]) -> str:
    """The hint after an unexpected word: what the parser would have accepted there.

    Where a statement may start, the statements one group a line::

        a statement starts with
          a layer: dense, conv, pool, flatten, dropout, batchnorm, rnn, lstm, gru
          …
    """
    if "DENSE" in expected:
        groups = [f"  {name}: {', '.join(words)}" for name, words in _STATEMENT_GROUPS]
        return "\n".join(["a statement starts with", *groups])
    return f"expected {_describe(expected)}"


def _describe(expected: set[str]) -> str:
    """What the parser would have accepted, in words."""
    if "DENSE" in expected:
        return "a statement"
    items = []
    if set(_ACTIVATIONS) <= expected:
        items.append("an activation")
        expected = expected - set(_ACTIVATIONS)
    items += [f"'{_keyword(name)}'" for name in _terminal_order(expected) if _keyword(name)]
    if "SHAPE" in expected:
        items.append("a size like 3x3 or 5")
    elif "NUMBER" in expected:
        items.append("a number")
    if "_EQ" in expected and not items:
        items.append("'='")
    if "LBRACE" in expected:
        items.append("'{'")
    if expected & set(_END):
        items.append("the end of the statement")
    if not items:
        return "something else"
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _describe_token(token: Token | None) -> str:
    if token is None or token.type in ("$END", "<EOF>"):
        return "end of the spec"
    if token.type == "_SEP":
        return "end of the line" if token == "\n" else "';'"
    if token.type == "NUMBER":
        return f"number {token}"
    if token.type == "SHAPE":
        return f"size {token}"
    if token.type == "LABEL":
        return f"label '{token}'"
    return f"'{token}'"
