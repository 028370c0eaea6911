"""A quiz as a teacher hands it out or uploads it: a text sheet, JSON, Moodle GIFT, Moodle XML.

GIFT: one question per item, its title the item's id; a number is a numerical answer with
tolerance 0 (``{#1216:0#…}``), a shape or a layer's name a short answer (``{=13x13x32#…}``),
a multiple-choice item ``{=right ~wrong …}``; the feedback holds the worked solution.
Moodle XML: ``<question type="numerical">`` (or ``shortanswer``, ``multichoice``), built with
the standard library's ElementTree.
"""
from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ElementTree

from .i18n import _, language, ngettext
from .quiz import Item, answer_text

GIFT_SPECIALS = "~=#{}:\\"
WIDTH = 78  # the text sheet's lines, for an 80-column terminal and a printed page


def gift_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in GIFT_SPECIALS else char for char in text)


def as_json(items: list[Item], meta: dict) -> str:
    return json.dumps({**meta, "lang": language(), "items": [item.as_json() for item in items]}, indent=2,
                      ensure_ascii=False)


def as_text(items: list[Item], meta: dict) -> str:
    """The sheet: the questions, then the answers with their worked solutions."""
    lines = [ngettext("nnrun quiz — seed {seed}, level {level}, {count} exercise",
                      "nnrun quiz — seed {seed}, level {level}, {count} exercises", len(items)).format(
        seed=meta["seed"], level=meta["level"], count=len(items)), ""]
    for number, item in enumerate(items, start=1):
        lines.append(textwrap.fill(f"{number}. [{item.id}] {item.question}", width=WIDTH, subsequent_indent="     "))
        lines += [f"     {line}" for line in item.spec.splitlines()]
        for letter, option in zip("abcdefgh", item.choices):
            lines.append(f"     {letter}) {option}")
        lines.append("")
    lines += [_("Answers"), ""]
    for number, item in enumerate(items, start=1):
        right = answer_text(item.answer, item.kind)
        if item.choices:
            right = f"{'abcdefgh'[item.correct]}) {right}"
        lines.append(f"{number}. [{item.id}] {right}")
        lines += [f"     {line}" for line in item.solution]
    return "\n".join(lines) + "\n"


def _feedback(item: Item) -> str:
    return " ; ".join(item.solution)


def as_gift(items: list[Item], meta: dict) -> str:
    blocks = [f"// nnrun quiz — seed {meta['seed']}, level {meta['level']}, {len(items)} items", ""]
    for item in items:
        question = gift_escape(item.question) + "\\n" + "\\n".join(gift_escape(line) for line in item.spec.splitlines())
        feedback = gift_escape(_feedback(item))
        if item.choices:
            options = " ".join(("=" if index == item.correct else "~") + gift_escape(option)
                               + (f"#{feedback}" if index == item.correct else "")
                               for index, option in enumerate(item.choices))
            answer = f"{{{options}}}"
        elif item.kind == "number":
            answer = f"{{#{item.answer}:0#{feedback}}}"
        else:
            forms = {answer_text(item.answer, item.kind)}
            if item.kind == "shape":
                forms.add("x".join(str(size) for size in item.answer))
            answer = "{" + " ".join(f"={gift_escape(form)}#{feedback}" for form in sorted(forms)) + "}"
        blocks += [f"::{gift_escape(item.id)}::[plain]{question}{answer}", ""]
    return "\n".join(blocks)


def as_moodle_xml(items: list[Item], meta: dict) -> str:
    quiz = ElementTree.Element("quiz")
    for item in items:
        kind = "multichoice" if item.choices else "numerical" if item.kind == "number" else "shortanswer"
        question = ElementTree.SubElement(quiz, "question", type=kind)
        ElementTree.SubElement(ElementTree.SubElement(question, "name"), "text").text = item.id
        text = ElementTree.SubElement(question, "questiontext", format="html")
        spec = "<br/>".join(item.spec.splitlines())
        ElementTree.SubElement(text, "text").text = f"<p>{item.question}</p><pre>{spec}</pre>"
        general = ElementTree.SubElement(question, "generalfeedback", format="html")
        ElementTree.SubElement(general, "text").text = "<br/>".join(item.solution)
        if item.choices:
            ElementTree.SubElement(question, "single").text = "true"
            options = [(option, 100 if index == item.correct else 0) for index, option in enumerate(item.choices)]
        elif item.kind == "number":
            options = [(str(item.answer), 100)]
        else:
            options = [(answer_text(item.answer, item.kind), 100)]
            if item.kind == "shape":
                options.append(("x".join(str(size) for size in item.answer), 100))
        for value, fraction in options:
            answer = ElementTree.SubElement(question, "answer", fraction=str(fraction))
            ElementTree.SubElement(answer, "text").text = value
            if kind == "numerical":
                ElementTree.SubElement(answer, "tolerance").text = "0"
            ElementTree.SubElement(ElementTree.SubElement(answer, "feedback"), "text").text = _feedback(item)
    ElementTree.indent(quiz)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(quiz, encoding="unicode") + "\n"


FORMATS = {"text": as_text, "json": as_json, "gift": as_gift, "moodle-xml": as_moodle_xml}
