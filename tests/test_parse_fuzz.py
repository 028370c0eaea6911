"""No input, however malformed, makes the parser raise anything but `SpecError`;
specs built from valid statements parse to the layers they were built from."""
from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nnrun.dsl import SpecError, parse, parse_file

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A vocabulary close to the language, so random text reaches deep into the grammar.
WORDS = [
    "input", "dense", "conv", "pool", "max", "avg", "global", "flatten", "dropout", "batchnorm",
    "relu", "sigmoid", "tanh", "softmax", "linear", "leakyrelu", "alpha", "rnn", "lstm", "gru",
    "sequences", "repeat", "loss", "cce", "mse", "optimizer", "sgd", "adam", "lr", "momentum",
    "nesterov", "beta1", "eps", "clip", "train", "epochs", "batch", "validation", "patience", "seed",
    "stride", "pad", "same", "valid", "l1", "l2", "dropconnect", "epsilon", "c1:", "x",
    "0", "1", "2", "-1", "0.5", "1e-3", "3x3", "28x28x1", "28x", "{", "}", ";", "\n", "=", "#", "×", "\u00a0",
]  # fmt: skip


def parses_or_spec_error(text: str) -> None:
    try:
        spec = parse(text)
    except SpecError as error:
        assert error.message
        error.render()  # rendering never fails either
    else:
        assert spec.layers


@FAST
@given(st.text(max_size=200))
def test_random_text(text):
    parses_or_spec_error(text)


@FAST
@given(st.lists(st.sampled_from(WORDS), max_size=30).map(" ".join))
def test_random_words_of_the_language(text):
    parses_or_spec_error(text)


VALID = "input 8x8x1\nc1: conv 4 3x3 relu stride 1 pad same\npool max 2\nflatten\ndense 10 softmax\nloss cce\n"


@FAST
@given(st.integers(0, len(VALID)), st.integers(0, 3), st.text(max_size=3))
def test_small_edits_of_a_valid_spec(at, delete, insert):
    parses_or_spec_error(VALID[:at] + insert + VALID[at + delete :])


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_in_a_file(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.net"
        path.write_bytes(data)
        try:
            parse_file(str(path))
        except SpecError as error:
            error.render()


# ---------------------------------------------------------------- valid specs round-trip

sizes = st.integers(1, 64)
fractions = st.sampled_from(["0", "0.1", "0.5", "0.99", "1e-2"])
kernels = st.sampled_from(["3", "3x3", "5x1", "3x3x3", "1"])
activations = st.sampled_from(["relu", "sigmoid", "tanh", "softmax", "linear", "leakyrelu", "leakyrelu 0.1"])
eq = st.sampled_from([" ", "=", " = "])


@st.composite
def layer_statements(draw) -> str:
    kind = draw(st.sampled_from(["dense", "conv", "pool", "flatten", "dropout", "batchnorm", "act", "rnn", "lstm"]))
    if kind == "dense":
        options = draw(st.lists(st.sampled_from(["act", "l1", "l2", "dropconnect"]), unique=True))
        words = [f"dense {draw(sizes)}"]
    elif kind == "conv":
        options = draw(st.lists(st.sampled_from(["act", "l2", "stride", "pad"]), unique=True))
        words = [f"conv {draw(sizes)} {draw(kernels)}"]
    elif kind == "pool":
        if draw(st.booleans()):
            return f"pool {draw(st.sampled_from(['max', 'avg']))} global"
        options = draw(st.lists(st.sampled_from(["stride", "pad"]), unique=True))
        words = [f"pool {draw(st.sampled_from(['max', 'avg']))} {draw(kernels)}"]
    elif kind == "rnn":
        options = draw(st.lists(st.sampled_from(["act", "sequences"]), unique=True))
        words = [f"rnn {draw(sizes)}"]
    elif kind == "lstm":
        return f"{draw(st.sampled_from(['lstm', 'gru']))} {draw(sizes)}" + draw(st.sampled_from(["", " sequences"]))
    elif kind == "dropout":
        return f"dropout {draw(fractions)}"
    elif kind == "batchnorm":
        return "batchnorm" + draw(st.sampled_from(["", " momentum 0.9", " epsilon=1e-5", " momentum 0.5 eps 0.1"]))
    elif kind == "act":
        return draw(activations)
    else:
        return "flatten"
    for option in options:
        if option == "act":
            words.append(draw(activations))
        elif option == "sequences":
            words.append("sequences")
        elif option in ("stride", "pad"):
            value = draw(st.sampled_from(["1", "2", "2x1"] + (["same", "valid", "0"] if option == "pad" else [])))
            words.append(f"{option}{draw(eq)}{value}")
        else:
            words.append(f"{option}{draw(eq)}{draw(fractions)}")
    return " ".join(words)


@st.composite
def blocks(draw, depth: int = 0) -> tuple[str, int]:
    """A statement or a repeat block, with how many layers it expands to."""
    if depth < 2 and draw(st.integers(0, 4)) == 0:
        count = draw(st.integers(1, 3))
        inner = draw(st.lists(blocks(depth + 1), min_size=1, max_size=3))
        separator = draw(st.sampled_from(["; ", "\n"]))
        text = f"repeat {count} {{ " + separator.join(t for t, _ in inner) + " }"
        return text, count * sum(n for _, n in inner)
    return draw(layer_statements()), 1


settings_lines = st.lists(
    st.sampled_from(["loss cce", "optimizer sgd lr 0.1 momentum 0.9", "optimizer adam", "train epochs 2 batch 8"]),
    unique_by=lambda line: line.split()[0],
    max_size=3,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(blocks(), min_size=1, max_size=8),
    settings_lines,
    st.sampled_from(["\n", "; ", "\r\n", " ;\n\n"]),
    st.booleans(),
)
def test_valid_specs_round_trip(statements, settings_, separator, with_comment):
    lines = ["input 16x16x3"] + [text for text, _ in statements] + settings_
    if with_comment:
        lines.insert(1, "# a comment; repeat {")
        lines = [line + "  # trailing" if "repeat" not in line and "#" not in line else line for line in lines]
        separator = separator.replace(";", "\n")  # a comment runs to the end of the line
    spec = parse(separator.join(lines))
    assert len(spec.layers) == sum(n for _, n in statements)
    assert spec.input_shape == (16, 16, 3)
    assert all(layer.pos is not None and layer.pos.line >= 1 for layer in spec.layers)
    if "loss cce" in settings_:
        assert spec.loss is not None and spec.loss.name == "cce"


@FAST
@given(st.lists(st.sampled_from(["c1", "c2", "conv_a", "x", "_9"]), min_size=1, max_size=6))
def test_labels_round_trip_or_collide(labels):
    text = "\n".join(f"{label}: dense 2" for label in labels)
    if len(set(labels)) == len(labels):
        assert [layer.label for layer in parse(text).layers] == labels
    else:
        try:
            parse(text)
        except SpecError as error:
            assert "is already used" in error.message
        else:
            raise AssertionError("duplicate labels were accepted")
