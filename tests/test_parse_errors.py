"""Parse-level errors: each names file:line:column, quotes the line, underlines the fault, says
what was expected and, where it can, how to fix it.  One row per kind of mistake."""
from __future__ import annotations

import re

import pytest

from nnrun.dsl import SpecError, parse, parse_file

NO_HINT = None

# text, line, column, caret width, a fragment of the message, a fragment of the hint
ROWS = [
    # unknown words, near misses
    ("cnov 32 3x3", 1, 1, 4, "unknown statement 'cnov'", "did you mean 'conv'?"),
    ("dense 10 sofmax", 1, 10, 6, "unknown option 'sofmax' in dense", "did you mean 'softmax'?"),
    ("optimiser adam", 1, 1, 9, "unknown statement 'optimiser'", "did you mean 'optimizer'?"),
    ("conv 8 3 strid 2", 1, 10, 5, "unknown option 'strid' in conv", "did you mean 'stride'?"),
    ("pool mx 2", 1, 6, 2, "unknown pooling mode 'mx'", "did you mean 'max'?"),
    ("Dense 10", 1, 1, 5, "unknown statement 'Dense'", "keywords are lower case: write 'dense'"),
    ("maxpool 2", 1, 1, 7, "unknown statement 'maxpool'", "'pool max'"),
    # no near miss: the hint says what may stand there (statements one group a line)
    ("dense 10\nfrobnicate", 2, 1, 10, "unknown statement 'frobnicate'", "\n  a layer: dense, conv, pool, flatten,"),
    ("dense 10 frobnicate", 1, 10, 10, "unknown option 'frobnicate' in dense", "expected an activation, 'l1', 'l2', 'dropconnect' or 'bias'"),
    ("loss foo", 1, 6, 3, "unknown loss 'foo'", "expected 'cce', 'bce', 'mse' or 'mae'"),
    ("loss categorical_crossentropy", 1, 6, 24, "unknown loss", "did you mean 'cce'?"),
    ("optimizer rmsprop", 1, 11, 7, "unknown optimizer 'rmsprop'", "expected 'sgd' or 'adam'"),
    ("optimizer adam momentum 0.9", 1, 16, 8, "'momentum' does not belong in optimizer", "'lr', 'beta1', 'beta2'"),
    ("lstm 32 relu", 1, 9, 4, "'relu' does not belong in lstm", "expected 'sequences'"),
    ("pool avg global stride 2", 1, 17, 6, "unexpected 'stride' in pool", "expected the end of the statement"),
    # a layer where a name was expected, two statements run together
    ("optimizer dense", 1, 11, 5, "unknown optimizer 'dense'", NO_HINT),
    ("dense 10 conv 3 3x3", 1, 10, 4, "'conv' starts a second statement on this line", "separate statements with ';'"),
    ("c1: loss cce", 1, 1, 2, "only layers take a label; 'loss' is not a layer", NO_HINT),
    # known mistakes (match_examples), also later in the file and inside blocks
    ("dense", 1, 6, 1, "dense needs the number of units", "dense 10 relu"),
    ("dense relu", 1, 7, 4, "dense needs the number of units", "dense 10 relu"),
    ("input 4\ndense 10\ndense   # no units\n", 3, 6, 1, "dense needs the number of units", "dense 10"),
    ("repeat 2 { dense }", 1, 18, 1, "dense needs the number of units", "dense 10"),
    ("lstm", 1, 5, 1, "lstm needs the number of units", "lstm 32"),
    ("conv", 1, 5, 1, "conv needs the number of filters", "conv 32 3x3 relu"),
    ("conv 3x3", 1, 6, 3, "conv needs the number of filters", "conv 32 3x3 relu"),
    ("conv 32", 1, 8, 1, "conv needs a kernel size", "conv 32 3x3 relu"),
    ("dense 4; conv 32 relu", 1, 18, 4, "conv needs a kernel size", "conv 32 3x3"),
    ("pool 2", 1, 6, 1, "pool needs a mode: max or avg", "pool max 2"),
    ("pool max", 1, 9, 1, "pool needs a size, or 'global'", "pool avg global"),
    ("dropout", 1, 8, 1, "dropout needs a rate", "dropout 0.5"),
    ("input\ndense 1", 1, 6, 1, "input needs a shape", "input 28x28x1"),
    ("loss", 1, 5, 1, "loss needs a name: cce, bce, mse or mae", "loss cce"),
    ("optimizer lr 0.1", 1, 11, 2, "unknown optimizer 'lr'", NO_HINT),
    ("optimizer", 1, 10, 1, "optimizer needs a name: sgd or adam", "optimizer adam lr 0.001"),
    ("repeat { dense 1 }", 1, 8, 1, "repeat needs a count", "repeat 2 {"),
    ("repeat 2 dense 1", 1, 10, 5, "after `repeat N` comes a block in braces", "repeat 2 {"),
    ("conv 8 3 stride", 1, 16, 1, "'stride' needs a value", "stride 2"),
    ("optimizer adam lr=", 1, 19, 1, "'lr' needs a value", "lr 0.001"),
    ("train epochs batch 3", 1, 14, 5, "'epochs' needs a value", "epochs 10"),
    ("c1:", 1, 4, 1, "label 'c1' needs a layer after it", "c1: conv 6 5x5 relu"),
    # shapes written wrong
    ("input 28x\ndense 1", 1, 7, 3, "incomplete size '28x'", "28x28x1"),
    ("conv 8 3x3x", 1, 8, 4, "incomplete size '3x3x'", "3x3"),
    ("input 28 x 28", 1, 10, 1, "unexpected 'x' in input", "without spaces"),
    ("input 28X28", 1, 9, 3, "unexpected 'X28'", "lower-case x"),
    ("conv 8 3*3", 1, 9, 1, "unexpected '*'", "3x3"),
    ("conv 8 (3, 3)", 1, 8, 1, "unexpected '('", "stride 2"),
    ("optimizer 'adam'", 1, 11, 1, "unexpected quote", "written bare"),
    # braces
    ("repeat 2 { dense 1\ndense 2", 1, 10, 1, "this '{' is never closed", "end the repeat block with '}'"),
    ("dense 1 }", 1, 9, 1, "'}' closes no block", "repeat N {"),
    ("repeat 2 { }", 1, 1, 6, "the repeat block is empty", "repeat 2 {"),
    # ranges: the message gives the allowed range
    ("dense 0", 1, 7, 1, "units must be a whole number from 1 to 1,000,000, got 0", NO_HINT),
    ("dense -5", 1, 7, 2, "units must be a whole number from 1 to 1,000,000, got -5", NO_HINT),
    ("dense 10.5", 1, 7, 4, "units must be a whole number, got '10.5'", "from 1 to 1,000,000"),
    ("dense 2000000", 1, 7, 7, "units must be a whole number from 1 to 1,000,000", NO_HINT),
    ("rnn 0", 1, 5, 1, "units must be", NO_HINT),
    ("conv 0 3", 1, 6, 1, "filters must be a whole number from 1", NO_HINT),
    ("conv 8 3x0", 1, 10, 1, "kernel size must be a whole number from 1", NO_HINT),
    ("conv 8 3 stride 1x0", 1, 19, 1, "stride must be a whole number from 1", NO_HINT),
    ("pool max 0", 1, 10, 1, "pool size must be a whole number from 1", NO_HINT),
    ("conv 8 3 pad -1", 1, 14, 2, "padding must be a whole number from 0", NO_HINT),
    ("input 28x0x1\ndense 1", 1, 10, 1, "input size must be a whole number from 1", NO_HINT),
    ("input 100000x100000x3\ndense 1", 1, 7, 15, "input has 30,000,000,000 values per sample; at most 100,000,000", NO_HINT),
    ("input 1x2x3x4x5\ndense 1", 1, 7, 9, "input has 5 dimensions; nnrun knows at most 4", "volumes DxHxWxC"),
    ("repeat 0 { dense 1 }", 1, 8, 1, "the repeat count must be a whole number from 1 to 1,000, got 0", NO_HINT),
    ("repeat 1001 { dense 1 }", 1, 8, 4, "from 1 to 1,000, got 1001", NO_HINT),
    ("repeat 200 { repeat 100 { dense 1 } }", 1, 8, 3, "makes 20,000 layers; at most 10,000", NO_HINT),
    ("dropout 1", 1, 9, 1, "the dropout rate must be a number ≥ 0 and < 1, got 1", NO_HINT),
    ("dropout -0.1", 1, 9, 4, "≥ 0 and < 1", NO_HINT),
    ("dense 4 dropconnect 1.5", 1, 21, 3, "dropconnect (the probability of dropping a weight) must be a number ≥ 0 and < 1", NO_HINT),
    ("dense 4 l1 -0.1", 1, 12, 4, "l1 (the L1 penalty λ) must be a number ≥ 0, got -0.1", NO_HINT),
    ("dense 4 l2 1e999", 1, 12, 5, "must be a finite number", NO_HINT),
    ("dense 4 leakyrelu -1", 1, 19, 2, "leaky ReLU slope alpha must be a number ≥ 0", NO_HINT),
    ("dense 1\noptimizer sgd lr 0", 2, 18, 1, "the learning rate lr must be a number > 0, got 0", NO_HINT),
    ("dense 1\noptimizer adam lr -0.01", 2, 19, 5, "learning rate lr must be a number > 0", NO_HINT),
    ("dense 1\noptimizer sgd momentum 1", 2, 24, 1, "momentum must be a number ≥ 0 and < 1, got 1", NO_HINT),
    ("dense 1\noptimizer adam beta1 1.2", 2, 22, 3, "beta1 must be a number ≥ 0 and < 1", NO_HINT),
    ("dense 1\noptimizer adam beta2 -0.5", 2, 22, 4, "beta2 must be a number ≥ 0 and < 1", NO_HINT),
    ("dense 1\noptimizer adam eps 0", 2, 20, 1, "epsilon must be a number > 0, got 0", NO_HINT),
    ("dense 1\noptimizer sgd clip 0", 2, 20, 1, "clip (the largest gradient norm) must be a number > 0", NO_HINT),
    ("batchnorm epsilon 0", 1, 19, 1, "epsilon must be a number > 0", NO_HINT),
    ("batchnorm momentum 1", 1, 20, 1, "momentum must be a number ≥ 0 and < 1", NO_HINT),
    ("dense 1\ntrain epochs 0", 2, 14, 1, "epochs must be a whole number from 1 to 1,000,000, got 0", NO_HINT),
    ("dense 1\ntrain batch 0", 2, 13, 1, "the batch size must be a whole number from 1", NO_HINT),
    ("dense 1\ntrain epochs 2.5", 2, 14, 3, "epochs must be a whole number, got '2.5'", NO_HINT),
    ("dense 1\ntrain validation 1", 2, 18, 1, "validation (the fraction held out) must be a number ≥ 0 and < 1", NO_HINT),
    ("dense 1\ntrain patience -1", 2, 16, 2, "patience must be a whole number from 0", NO_HINT),
    ("dense 1\ntrain seed -1", 2, 12, 2, "seed must be a whole number from 0 to 4,294,967,295", NO_HINT),
    ("dense 1\ntrain seed 99999999999999999999999", 2, 12, 23, "seed is far too large", NO_HINT),
    # duplicate options, pointing at the second
    ("dense 10 relu relu", 1, 15, 4, "dense already has an activation (column 10)", "give each option once: remove one of them"),
    ("dense 10 relu softmax", 1, 15, 7, "dense already has an activation", NO_HINT),
    ("conv 8 3 stride 2 stride 1", 1, 19, 8, "conv already has 'stride' (column 10)", NO_HINT),
    ("conv 8 3 pad same pad=1", 1, 19, 5, "conv already has 'pad'", NO_HINT),
    ("rnn 4 sequences sequences", 1, 17, 9, "rnn already has 'sequences'", NO_HINT),
    ("dense 1\noptimizer adam eps 1e-7 epsilon 1e-8", 2, 25, 12, "optimizer adam already has 'epsilon'", NO_HINT),
    ("dense 1\ntrain epochs 1 epochs 2", 2, 16, 8, "train already has 'epochs'", NO_HINT),
    # duplicate statements, pointing at the second
    ("dense 1\nloss cce\nloss mse", 3, 1, 8, "a second 'loss' statement; the first is on line 2", "give 'loss' once"),
    ("input 4\ninput 4\ndense 1", 2, 1, 7, "a second 'input' statement; the first is on line 1", NO_HINT),
    ("dense 1\noptimizer sgd; optimizer adam", 2, 16, 14, "a second 'optimizer' statement", NO_HINT),
    ("dense 1\ntrain\ntrain epochs 1", 3, 1, 14, "a second 'train' statement", NO_HINT),
    ("dense 4\ninput 8", 2, 1, 7, "input must come before the layers", "the first layer is on line 1: move the input line to the top"),
    # labels
    ("c1: dense 4\nc1: dense 2", 2, 1, 2, "label 'c1' is already used on line 1", "unique"),
    ("repeat 2 { c1: dense 4 }", 1, 12, 2, "label 'c1' inside repeat would name 2 layers", "labels must be unique"),
    ("repeat 2 { loss cce }", 1, 12, 8, "only layers can be repeated; 'loss' is a setting", "out of the repeat block"),
    ("a: repeat 2 { dense 1 }", 1, 1, 1, "only layers take a label; 'repeat' is not a layer", NO_HINT),
    # nothing to build
    ("", 1, 1, 1, "the spec has no layers", "write at least one, e.g. `dense 10 softmax`"),
    ("# only a comment\n\n", 1, 1, 1, "the spec has no layers", "dense 10 softmax"),
    ("input 28x28x1\nloss cce\noptimizer adam", 1, 1, 1, "the spec has no layers", "dense 10 softmax"),
    # characters: binary garbage and non-ASCII look-alikes
    ("dense 10\x00\x01", 1, 9, 1, "unexpected control character U+0000 NUL", "binary file"),
    ("dense 1 # \x07 bell in a comment", 1, 11, 1, "control character U+0007", NO_HINT),
    ("input 28×28×1\ndense 1", 1, 9, 1, "non-ASCII character U+00D7 MULTIPLICATION SIGN", "type the ASCII 'x' instead"),
    ("\u0441onv 8 3", 1, 1, 1, "U+0441 CYRILLIC SMALL LETTER ES", "it looks like 'c'"),
    ("dense \u22125", 1, 7, 1, "U+2212 MINUS SIGN", "it looks like '-'"),
    ("dense 1 l2 \u20130.1", 1, 12, 1, "U+2013 EN DASH", "it looks like '-'"),
    ("optimizer \u201cadam\u201d", 1, 11, 1, "U+201C LEFT DOUBLE QUOTATION MARK", "it looks like '\"'"),
    ("dense\u00a010", 1, 6, 1, "U+00A0 NO-BREAK SPACE", "type a plain space"),
    ("dense 10\u200b", 1, 9, 1, "U+200B ZERO WIDTH SPACE", "invisible: delete it"),
    ("\uff44ense 1", 1, 1, 1, "FULLWIDTH LATIN SMALL LETTER D", "it looks like 'd'"),
    ("dense 1 \u2603", 1, 9, 1, "U+2603 SNOWMAN", "plain ASCII"),
]


@pytest.mark.parametrize(("text", "line", "column", "width", "message", "hint"), ROWS, ids=[r[0][:40] for r in ROWS])
def test_error(text, line, column, width, message, hint):
    with pytest.raises(SpecError) as caught:
        parse(text, "bad.net")
    error = caught.value
    assert (error.pos.file, error.pos.line, error.pos.column) == ("bad.net", line, column), error.render()
    assert message in error.message, error.render()
    if hint is None:
        assert error.hint is None or message not in error.hint
    else:
        assert error.hint is not None and hint in error.hint, error.render()
    rendered = error.render()
    assert rendered.startswith(f"bad.net:{line}:{column}: error: ")
    if text.strip() and error.source_line is not None:
        caret = rendered.splitlines()[2]
        assert caret == "  " + " " * (column - 1) + "^" + "~" * (width - 1), rendered


def test_render_quotes_the_line_with_a_caret_under_the_fault():
    with pytest.raises(SpecError) as caught:
        parse("input 28x28x1\ncnov 32 3x3 relu\n", "mnist.net")
    assert caught.value.render() == (
        "mnist.net:2:1: error: unknown statement 'cnov'\n"
        "  cnov 32 3x3 relu\n"
        "  ^~~~\n"
        "hint: did you mean 'conv'?"
    )


def test_without_a_near_miss_the_hint_lists_every_statement_in_groups():
    with pytest.raises(SpecError) as caught:
        parse("input 28x28x1\nfrobnicate 32\n", "mnist.net")
    assert caught.value.render().splitlines()[3:] == [
        "hint: a statement starts with",
        "        a layer: dense, conv, pool, flatten, dropout, batchnorm, rnn, lstm, gru",
        "        an activation: relu, sigmoid, tanh, softmax, linear, leakyrelu",
        "        a setting: input, loss, optimizer, train",
        "        or a block: repeat N { … }",
    ]


# Range errors quote the whole allowed range ("from 1 to 100,000,000") and may run past 80.
FITS = [row[0] for row in ROWS if not re.search(r"must be|from 1 to|far too large|per sample", row[4])]


@pytest.mark.parametrize("text", FITS, ids=[text[:40] for text in FITS])
def test_every_message_fits_an_80_column_terminal(text):
    with pytest.raises(SpecError) as caught:
        parse(text, "bad.net")
    too_long = [line for line in caught.value.render().splitlines() if len(line) > 80]
    assert not too_long, caught.value.render()


def test_caret_stays_under_the_fault_after_tabs():
    with pytest.raises(SpecError) as caught:
        parse("\tdense\t0")
    lines = caught.value.render().splitlines()
    assert lines[1] == "   dense 0"
    assert lines[2].index("^") == lines[1].index("0")


def test_the_first_of_several_mistakes_is_reported():
    with pytest.raises(SpecError) as caught:
        parse("dense 10\nsofmax\ncnov 3")
    assert caught.value.pos.line == 2


# ---------------------------------------------------------------- files


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such file: .*nope.net"):
        parse_file(str(tmp_path / "nope.net"))


def test_directory(tmp_path):
    with pytest.raises(SpecError, match="is a directory"):
        parse_file(str(tmp_path))


def test_unreadable_file(tmp_path, monkeypatch):
    path = tmp_path / "secret.net"
    path.write_text("dense 1")
    real_open = open

    def denied(file, *args, **kwargs):  # root reads every file, so chmod 0 proves nothing here
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", denied)
    with pytest.raises(SpecError, match="cannot read .*permission denied"):
        parse_file(str(path))


def test_binary_file(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"PK\x03\x04\x00\x00garbage\n")
    with pytest.raises(SpecError) as caught:
        parse_file(str(path))
    assert "looks like a binary file" in caught.value.message
    assert (caught.value.pos.file, caught.value.pos.line, caught.value.pos.column) == (str(path), 1, 5)


def test_invalid_utf8_points_at_the_byte(tmp_path):
    path = tmp_path / "latin1.net"
    path.write_bytes("dense 1\n# café\nconv 8 3\n".encode("latin-1"))
    with pytest.raises(SpecError) as caught:
        parse_file(str(path))
    error = caught.value
    assert "not UTF-8 text: byte 0xe9" in error.message
    assert (error.pos.line, error.pos.column) == (2, 6)
    assert error.source_line == "# caf\ufffd"
    assert "UTF-8" in error.hint


def test_errors_in_a_file_carry_its_path(tmp_path):
    path = tmp_path / "net.net"
    path.write_text("dense 10\r\ndense 0\r\n")
    with pytest.raises(SpecError) as caught:
        parse_file(str(path))
    assert str(caught.value.pos) == f"{path}:2:7"
    assert caught.value.source_line == "dense 0"


def test_huge_file(tmp_path):
    path = tmp_path / "huge.net"
    path.write_bytes(b"# x\n" * 300_000)
    with pytest.raises(SpecError, match="larger than 1,000,000 bytes"):
        parse_file(str(path))


def test_deep_nesting_is_an_error_not_a_crash():
    text = "repeat 1 { " * 40 + "dense 1" + " }" * 40
    with pytest.raises(SpecError, match="nested more than 32 deep") as caught:
        parse(text)
    assert caught.value.pos.column == 1 + len("repeat 1 { ") * 32 + len("repeat 1 ")


def test_very_long_line_is_cut_around_the_fault():
    text = "relu; " * 2000 + "sofmax"
    with pytest.raises(SpecError) as caught:
        parse(text)
    lines = caught.value.render().splitlines()
    assert len(lines[1]) < 120
    assert lines[1][lines[2].index("^") :].startswith("sofmax")
