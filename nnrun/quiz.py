"""Randomised exercises with worked answers, for a whole class: `nnrun quiz` and `nnrun grade`.

    items = make_quiz(topic="all", count=10, seed=7, level=2)    # the same seed, the same sheet
    grade(items, {"conv-7-1": "13x13x32", …})                     # per item right/wrong, the score

Every exercise is a small `.net` text drawn at random — sizes that floor, `same` and
`valid`, strides 1 to 3, pooling, a flatten before a dense layer, simple and gated
recurrent layers — and its answer is what the calculator computes for that text
(`nnrun.dsl.resolve`, Keras's rules), its worked solution the formulas `nnrun summary
--explain` shows.  Wrong options of the multiple-choice variants are the classic
mistakes: the bias forgotten, `same` taken for `valid`, ceil for floor, parameters given
to a pooling layer, the flatten size of the un-pooled map.

Texts go through the message catalog (`nnrun.i18n`): ``--lang fr`` gives the sheet in French.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import asdict, dataclass, field

from nnrun import dsl

from .errors import RunError
from .i18n import _, ngettext, number_text

TOPICS = ("output-size", "params", "conv", "pool", "dense", "rnn", "iterations", "network")
MAX_COUNT = 1000


@dataclass
class Item:
    id: str
    topic: str
    level: int
    question: str
    spec: str  # the .net text the question is about
    answer: object  # a whole number, a shape [h, w, c], or a layer's name
    kind: str  # "number", "shape" or "name"
    solution: list[str]  # the worked arithmetic, line by line
    about: dict  # what the answer is, for a re-derivation: {"layer": …, "field": …} or {"total_params": True} …
    choices: list[str] = field(default_factory=list)  # multiple choice: the options, one of them right
    correct: int | None = None  # the right option's index

    def as_json(self) -> dict:
        data = asdict(self)
        if not self.choices:
            data.pop("choices")
            data.pop("correct")
        return data


def answer_text(answer, kind: str) -> str:
    if kind == "shape":
        return "×".join(str(size) for size in answer)
    if kind == "number":
        return number_text(answer)
    return str(answer)


# ------------------------------------------------------------------ drawing a layer


def _resolved(spec: str):
    return dsl.resolve(dsl.parse(spec, "<quiz>"))


def _layer(model, index: int = 0):
    return [info for info in model.layers if not info.name.startswith("flatten")][index]


def _draw_window(rng: random.Random, level: int, pooling: bool = False) -> tuple[int, int, int, str]:
    """(input size, kernel, stride, padding) that give an output of at least 2."""
    while True:
        size = rng.choice([5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32]) if level == 1 else rng.randint(5, 64)
        kernel = rng.choice([2, 3] if pooling else [2, 3, 5]) if level == 1 else rng.choice([2, 3, 4, 5, 7])
        stride = (kernel if pooling else 1) if level == 1 else rng.choice([1, 2, 2, 3])
        padding = "valid" if level == 1 else rng.choice(["valid", "same", str(rng.randint(1, max(1, kernel // 2)))])
        pad = int(padding) if padding.isdigit() else 0  # explicit padding: at most half the window
        out = math.ceil(size / stride) if padding == "same" else (size - kernel + 2 * pad) // stride + 1
        if out >= 2 and kernel <= size:
            return size, kernel, stride, padding


def _window_words(kernel: int, stride: int, padding: str, pooling: bool) -> str:
    words = f"{kernel}x{kernel}" if not pooling else f"{kernel}"
    if stride != (kernel if pooling else 1):
        words += f" stride {stride}"
    if padding != "valid":
        words += f" pad {padding}"
    return words


def _wrong_sizes(size: int, kernel: int, stride: int, padding: str) -> list[int]:
    """The classic slips on O = ⌊(I − K + 2P)/S⌋ + 1: `same` taken for `valid` (and back), ceil for
    floor, the + 1 forgotten."""
    pad = int(padding) if padding.isdigit() else 0
    valid = (size - kernel + 2 * pad) // stride + 1
    options = [math.ceil(size / stride) if padding != "same" else (size - kernel) // stride + 1,
               math.ceil((size - kernel + 2 * pad) / stride) + 1 if padding != "same" else math.floor(size / stride),
               valid - 1 if padding != "same" else math.ceil(size / stride) + 1]
    return [o for o in options if o >= 1]


def output_size_item(rng, level, pooling=None):
    pooling = rng.random() < 0.3 if pooling is None else pooling
    size, kernel, stride, padding = _draw_window(rng, level, pooling)
    channels = rng.choice([1, 3]) if level == 1 else rng.choice([1, 3, 8, 16, 32])
    if pooling:
        statement = f"pool {rng.choice(['max', 'avg'])} {_window_words(kernel, stride, padding, True)}"
    else:
        statement = f"conv {rng.choice([4, 8, 16, 32, 64])} {_window_words(kernel, stride, padding, False)}"
    spec = f"input {size}x{size}x{channels}\n{statement}"
    model = _resolved(spec)
    layer = _layer(model)
    answer = list(layer.output_shape)
    filters = answer[-1]
    wrong = [[o, o, filters] for o in _wrong_sizes(size, kernel, stride, padding)]
    question = _("What is the output shape of `{statement}` on an input of {shape}?").format(
        statement=statement, shape=f"{size}×{size}×{channels}")
    formulas = layer.explain if pooling else layer.explain[:-1]  # a conv's last line counts its parameters
    solution = [*formulas, _("output: {shape}").format(shape=answer_text(answer, "shape"))]
    return question, spec, answer, "shape", solution, {"layer": layer.name, "field": "output_shape"}, wrong


def conv_params_item(rng, level):
    size, kernel, stride, padding = _draw_window(rng, level)
    channels = rng.choice([1, 3]) if level == 1 else rng.choice([1, 3, 6, 16, 32, 64])
    filters = rng.choice([4, 6, 8, 16, 32, 64, 128])
    statement = f"conv {filters} {_window_words(kernel, stride, padding, False)}"
    spec = f"input {size}x{size}x{channels}\n{statement}"
    layer = _layer(_resolved(spec))
    wrong = [kernel * kernel * channels * filters, (kernel * kernel + 1) * filters,
             (kernel * kernel * channels + 1) * channels]
    question = _("How many parameters does `{statement}` have on an input of {shape}?").format(
        statement=statement, shape=f"{size}×{size}×{channels}")
    return question, spec, layer.params, "number", [layer.explain[-1]], {"layer": layer.name, "field": "params"}, wrong


def dense_params_item(rng, level):
    units = rng.choice([2, 10, 16, 32, 64, 100, 128, 256])
    if level == 1:
        inputs = rng.choice([2, 4, 10, 64, 100, 784])
        spec = f"input {inputs}\ndense {units}"
        wrong = [inputs * units, (inputs + 1) * (units + 1), inputs * (units + 1) + 1]
    else:  # after a pooled image, flattened: the flatten size of the un-pooled map is the classic slip
        size, channels, pool = rng.choice([8, 12, 16, 24, 28, 32]), rng.choice([4, 8, 16, 32]), 2
        spec = f"input {size}x{size}x{channels}\npool max {pool}\nflatten\ndense {units}"
        inputs = (size // pool) ** 2 * channels
        wrong = [inputs * units, (size * size * channels + 1) * units, (inputs + 1) * (units + 1)]
    model = _resolved(spec)
    layer = model.layers[-1]
    lines = [info.explain[-1] for info in model.layers if info.type in ("flatten", "max_pooling2d")] + [layer.explain[-1]]
    question = _("How many parameters does the last layer of this network have?")
    return question, spec, layer.params, "number", lines, {"layer": layer.name, "field": "params"}, wrong


def rnn_params_item(rng, level):
    cell = "rnn" if level == 1 else rng.choice(["rnn", "lstm", "gru"])
    units, features, steps = rng.choice([4, 8, 16, 32, 64]), rng.choice([1, 2, 3, 8, 16, 28]), rng.choice([10, 20, 28, 50])
    spec = f"input {steps}x{features}\n{cell} {units}"
    layer = _layer(_resolved(spec))
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    wrong = [gates * units * (features + 1), gates * units * (units + features), gates * units * (units + features + 1)
             if cell == "gru" else gates * units * (units + features + 2)]
    question = ngettext("How many parameters does `{statement}` have on sequences of {steps} steps of {features} "
                        "feature?", "How many parameters does `{statement}` have on sequences of {steps} steps of "
                        "{features} features?", features).format(statement=f"{cell} {units}", steps=steps,
                                                                  features=features)
    return question, spec, layer.params, "number", [layer.explain[-1]], {"layer": layer.name, "field": "params"}, wrong


def pool_item(rng, level):
    if level == 1 and rng.random() < 0.5:  # the trick question: pooling learns nothing
        size, kernel = rng.choice([8, 12, 16, 24, 28]), 2
        channels = rng.choice([4, 8, 16, 32])
        statement = f"pool max {kernel}"
        spec = f"input {size}x{size}x{channels}\n{statement}"
        layer = _layer(_resolved(spec))
        question = _("How many parameters does `{statement}` have on an input of {shape}?").format(
            statement=statement, shape=f"{size}×{size}×{channels}")
        wrong = [(kernel * kernel * channels + 1) * channels, kernel * kernel, kernel * kernel * channels]
        return question, spec, 0, "number", [_("a pooling layer has no weights: 0 parameters")], \
            {"layer": layer.name, "field": "params"}, wrong
    return output_size_item(rng, level, pooling=True)


def iterations_item(rng, level):
    samples = rng.choice([1000, 2000, 5000, 6000, 10000, 50000, 60000]) + (rng.randint(1, 999) if level > 1 else 0)
    batch = rng.choice([16, 32, 50, 64, 100, 128, 200, 256, 500])
    epochs = rng.choice([1, 5, 10, 20]) if level > 1 else 1
    per_epoch = math.ceil(samples / batch)
    answer = per_epoch * epochs
    spec = f"input 784\ndense 10 softmax\ntrain epochs {epochs} batch {batch}"
    if epochs == 1:
        question = _("{samples} training samples, batch {batch}: how many iterations does one epoch take?").format(
            samples=number_text(samples), batch=batch)
        solution = [f"⌈{samples}/{batch}⌉ = {per_epoch}"]
    else:
        question = _("{samples} training samples, batch {batch}, {epochs} epochs: how many iterations in all?").format(
            samples=number_text(samples), batch=batch, epochs=epochs)
        solution = [f"⌈{samples}/{batch}⌉ = {per_epoch}", f"{per_epoch}·{epochs} = {answer}"]
    wrong = [samples // batch * epochs, samples * epochs // batch + 1, math.ceil(samples / batch / epochs)]
    return question, spec, answer, "number", solution, {"samples": samples, "batch": batch, "epochs": epochs}, wrong


def _network_spec(rng, level) -> str:
    size = rng.choice([16, 28, 32]) if level < 3 else rng.choice([28, 32, 48, 64])
    channels = rng.choice([1, 3])
    lines = [f"input {size}x{size}x{channels}"]
    for _block in range(rng.choice([1, 2]) if level < 3 else rng.choice([2, 3])):
        kernel = rng.choice([3, 5])
        lines.append(f"conv {rng.choice([4, 8, 16, 32])} {kernel}x{kernel}{rng.choice(['', ' pad same'])} relu")
        lines.append("pool max 2")
    lines.append("flatten")
    if rng.random() < 0.6:
        lines.append(f"dense {rng.choice([32, 64, 128])} relu")
    lines.append(f"dense {rng.choice([2, 6, 10])} softmax")
    return "\n".join(lines)


def network_item(rng, level):
    while True:
        spec = _network_spec(rng, level)
        try:
            model = _resolved(spec)
            break
        except dsl.SpecError:  # a draw whose windows do not fit: draw again
            continue
    what = rng.choice(["total", "most", "shape"])
    solution = [f"{info.name}: {line}" for info in model.layers for line in info.explain]
    if what == "total":
        answer = model.total_params
        counted = " + ".join(number_text(info.params) for info in model.layers if info.params)
        solution.append(f"{counted} = {number_text(answer)}")
        pooled = [info for info in model.layers if info.type.startswith("max_pooling")]
        wrong = [answer - sum(info.layer.filters if hasattr(info.layer, "filters") else info.layer.units
                              for info in model.layers if info.params),
                 answer + sum((4 + 1) * info.output_shape[-1] for info in pooled)]
        return (_("How many parameters does this network have in all?"), spec, answer, "number", solution,
                {"total_params": True}, wrong)
    if what == "most":
        largest = max(model.layers, key=lambda info: info.params)
        others = [info.name for info in model.layers if info.params and info.name != largest.name]
        return (_("Which layer holds the most parameters?"), spec, largest.name, "name", solution,
                {"most_params_layer": True}, others)
    index = rng.randrange(len(model.layers))
    layer = model.layers[index]
    answer = list(layer.output_shape)
    wrong = [list(model.layers[index - 1].output_shape)] if index else []
    question = _("What is the output shape of {layer} (layer {number} of the network)?").format(
        layer=layer.name, number=index + 1)
    return question, spec, answer, "shape", solution[: sum(len(info.explain) for info in model.layers[: index + 1])], \
        {"layer": layer.name, "field": "output_shape"}, wrong


GENERATORS = {
    "output-size": lambda rng, level: output_size_item(rng, level),
    "conv": lambda rng, level: rng.choice([conv_params_item, lambda r, lv: output_size_item(r, lv, False)])(rng, level),
    "params": lambda rng, level: rng.choice([conv_params_item, dense_params_item, rnn_params_item])(rng, level),
    "pool": pool_item,
    "dense": dense_params_item,
    "rnn": rnn_params_item,
    "iterations": iterations_item,
    "network": network_item,
}


def make_quiz(topic: str = "all", count: int = 10, seed: int = 0, level: int = 1,
              multiple_choice: bool = False) -> list[Item]:
    """``count`` exercises on ``topic`` (or all), drawn from ``seed``: the same seed, the same items."""
    if topic != "all" and topic not in TOPICS:
        raise RunError(f"unknown topic {topic!r}", f"the topics are {', '.join(TOPICS)} and all")
    if not 1 <= count <= MAX_COUNT:
        raise RunError(f"--count must be from 1 to {MAX_COUNT:,}, not {count:,}", "e.g. --count 10")
    if level not in (1, 2, 3):
        raise RunError(f"--level must be 1, 2 or 3, not {level}")
    items = []
    for index in range(count):
        rng = random.Random(f"{seed}:{topic}:{level}:{index}")  # each item from its own stream
        chosen = topic if topic != "all" else rng.choice(TOPICS if level == 3 else TOPICS[:-1])
        if level == 3 and topic == "all":
            chosen = "network"
        question, spec, answer, kind, solution, about, wrong = GENERATORS[chosen](rng, level)
        item = Item(f"{chosen}-{seed}-{index + 1}", chosen, level, question, spec, answer, kind, solution, about)
        if multiple_choice:
            options = [answer_text(answer, kind)]
            for value in wrong:
                text = answer_text(value, kind)
                if text not in options and (kind != "number" or value >= 0):
                    options.append(text)
            options = options[:4]
            rng.shuffle(options)
            item.choices, item.correct = options, options.index(answer_text(answer, kind))
        items.append(item)
    return items


# ------------------------------------------------------------------ grading


def parse_shape(value) -> list[int] | None:
    """``13x13x32``, ``13×13×32``, ``[13, 13, 32]`` or a list → [13, 13, 32]; None if it is none of these."""
    if isinstance(value, list) and value and all(type(v) is int for v in value):
        return value
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        parts = [part for part in re.split(r"\s*[x×X,]\s*", text) if part != ""]
        if parts and all(part.isdigit() for part in parts) and len(parts) == len(re.split(r"\s*[x×X,]\s*", text)):
            return [int(part) for part in parts]
    return None


def parse_number(value) -> int | float | None:
    if type(value) in (int, float):
        return value
    if isinstance(value, str):
        text = re.sub(r"[\s_ ,]", "", value.strip()) if not re.fullmatch(r"\d+,\d{1,2}", value.strip()) \
            else value.strip().replace(",", ".")
        try:
            return float(text) if "." in text else int(text)
        except ValueError:
            return None
    return None


def is_right(item: dict, given) -> bool:
    """Whether ``given`` answers ``item`` (a JSON item); a multiple-choice item also takes the
    option's letter (a, b, c …).  A shape written in no readable way is a RunError."""
    kind, answer = item["kind"], item["answer"]
    if item.get("choices") and isinstance(given, str) and len(given.strip()) == 1 and given.strip().isalpha():
        return ord(given.strip().lower()) - ord("a") == item["correct"]
    if kind == "shape":
        shape = parse_shape(given)
        if shape is None:
            raise RunError(f"the answer to {item['id']} should be a shape, like 13x13x32 or [13, 13, 32]; "
                           f"got {given!r}", "write the sizes joined by x, or as a JSON list")
        return shape == answer
    if kind == "number":
        number = parse_number(given)
        return number is not None and number == answer
    return isinstance(given, str) and given.strip().lower() == str(answer).lower()


def grade(items: list[dict], answers: dict) -> list[tuple[dict, object, bool]]:
    """(item, the answer given, right?) for every item; every id must be answered, and no other."""
    ids = [item["id"] for item in items]
    missing = [item_id for item_id in ids if item_id not in answers]
    unknown = [key for key in answers if key not in ids]
    if missing:
        raise RunError(f"the answers have no value for {len(missing)} item{'s' if len(missing) > 1 else ''}: "
                       + ", ".join(missing[:10]) + (" …" if len(missing) > 10 else ""),
                       'answer every item: {"id": value, …} (an unknown answer can be null)')
    if unknown:
        raise RunError(f"the answers name items the quiz does not have: {', '.join(unknown[:10])}",
                       "grade the answers against the quiz they were written for")
    return [(item, answers[item["id"]], answers[item["id"]] is not None and is_right(item, answers[item["id"]]))
            for item in items]
