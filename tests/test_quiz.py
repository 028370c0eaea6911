"""Exercises for the course (issue 15): generated from a seed, answered as the calculator
computes, exported for Moodle, graded for an autograder, in English and French."""
from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from conftest import run_cli
from nnrun.i18n import LOCALE_DIR


def quiz_json(*args) -> dict:
    status, out, err = run_cli("quiz", "--format", "json", *args)
    assert status == 0, err
    return json.loads(out)


def summary_of(spec: str) -> dict:
    status, out, err = run_cli("summary", spec, "--json")
    assert status == 0, err
    return json.loads(out)


def rederive(item: dict):
    """The item's answer from `nnrun summary --json` of its .net text (or, for iterations, ⌈N/B⌉·E)."""
    about = item["about"]
    if "samples" in about:
        assert f"batch {about['batch']}" in item["spec"]
        return math.ceil(about["samples"] / about["batch"]) * about["epochs"]
    summary = summary_of(item["spec"])
    if about.get("total_params"):
        return summary["total_params"]
    if about.get("most_params_layer"):
        return max(summary["layers"], key=lambda layer: layer["params"])["name"]
    layer = next(layer for layer in summary["layers"] if layer["name"] == about["layer"])
    return layer[about["field"]]


def test_500_items_over_every_topic_and_level_are_what_the_calculator_says():
    checked = 0
    for level in (1, 2, 3):
        for topic in ("output-size", "params", "conv", "pool", "dense", "rnn", "iterations", "network", "all"):
            count = 20 if topic != "all" else 24
            for item in quiz_json("--topic", topic, "--level", str(level), "--count", str(count), "--seed", "11")["items"]:
                assert item["answer"] == rederive(item), item
                if item["kind"] == "shape":
                    assert all(size >= 1 for size in item["answer"])
                elif item["kind"] == "number":
                    assert item["answer"] >= 0 and (item["answer"] > 0 or "pool" in item["spec"])
                assert item["solution"] and item["question"].endswith("?")
                checked += 1
    assert checked >= 500


def test_the_same_seed_gives_the_same_sheet_and_another_seed_another():
    for fmt in ("text", "json", "gift", "moodle-xml"):
        first = run_cli("quiz", "--topic", "all", "--count", "15", "--seed", "5", "--level", "2", "--format", fmt)[1]
        again = run_cli("quiz", "--topic", "all", "--count", "15", "--seed", "5", "--level", "2", "--format", fmt)[1]
        other = run_cli("quiz", "--topic", "all", "--count", "15", "--seed", "6", "--level", "2", "--format", fmt)[1]
        assert first == again and first != other


def test_multiple_choice_options_hold_the_answer_and_classic_mistakes():
    items = quiz_json("--topic", "conv", "--count", "30", "--seed", "2", "--level", "2", "--multiple-choice")["items"]
    for item in items:
        options = item["choices"]
        assert len(options) == len(set(options)) >= 2
        right = options[item["correct"]]
        answer = item["answer"]
        assert right == ("×".join(map(str, answer)) if item["kind"] == "shape" else f"{answer:,}")
    params = [item for item in items if item["kind"] == "number"]
    assert params
    for item in params:  # the bias forgotten is among the wrong options of every conv parameter count
        spec = item["spec"].splitlines()
        channels = int(spec[0].split("x")[-1])
        filters, kernel = int(spec[1].split()[1]), int(spec[1].split()[2].split("x")[0])
        assert f"{kernel * kernel * channels * filters:,}" in item["choices"]


def gift_questions(text: str) -> list[dict]:
    """A small GIFT reader: ::title:: text {answers}, one question per block."""
    questions = []
    for block in re.split(r"\n\s*\n", text):
        lines = [line for line in block.splitlines() if not line.startswith("//")]
        if not lines:
            continue
        body = "\n".join(lines)
        match = re.fullmatch(r"::((?:\\.|[^:\\])+)::(.*)\{((?:\\.|[^}\\])*)\}\s*", body, re.S)
        assert match, body
        title, answers = match.group(1), match.group(3)
        numeric = re.fullmatch(r"#(-?\d+(?:\.\d+)?):(\d+)#(.*)", answers, re.S)
        questions.append({"title": title.replace("\\", ""), "numeric": numeric and float(numeric.group(1)),
                          "tolerance": numeric and float(numeric.group(2)), "feedback": numeric and numeric.group(3)})
    return questions


def test_gift_has_one_numeric_question_per_item_with_the_worked_solution(tmp_path):
    gift = tmp_path / "quiz.gift"
    status, out, err = run_cli("quiz", "--topic", "params", "--count", "20", "--seed", "3", "--level", "2",
                               "--format", "gift", "--out", gift)
    assert status == 0, err
    items = quiz_json("--topic", "params", "--count", "20", "--seed", "3", "--level", "2")["items"]
    questions = gift_questions(gift.read_text(encoding="utf-8"))
    assert [q["title"] for q in questions] == [item["id"] for item in items]
    for question, item in zip(questions, items):
        assert question["numeric"] == item["answer"] and question["tolerance"] == 0
        assert "·" in question["feedback"] and "=" in question["feedback"]


def test_moodle_xml_is_xml_with_a_numerical_question_per_number(tmp_path):
    xml = tmp_path / "quiz.xml"
    assert run_cli("quiz", "--topic", "all", "--count", "20", "--seed", "4", "--level", "2", "--format",
                   "moodle-xml", "--out", xml)[0] == 0
    items = quiz_json("--topic", "all", "--count", "20", "--seed", "4", "--level", "2")["items"]
    root = ElementTree.parse(xml).getroot()
    questions = root.findall("question")
    assert len(questions) == 20
    numerical = [q for q in questions if q.get("type") == "numerical"]
    assert len(numerical) == sum(item["kind"] == "number" for item in items)
    for question, item in zip(questions, items):
        assert question.find("name/text").text == item["id"]
        if question.get("type") == "numerical":
            assert question.find("answer/text").text == str(item["answer"])
            assert question.find("answer/tolerance").text == "0"


def write_answers(tmp_path: Path, quiz: dict, change: dict | None = None) -> Path:
    answers = {item["id"]: item["answer"] for item in quiz["items"]}
    answers.update(change or {})
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers))
    return path


def test_grading_the_quizs_own_answers_and_one_wrong_one(tmp_path):
    quiz_path = tmp_path / "quiz.json"
    assert run_cli("quiz", "--topic", "all", "--count", "10", "--seed", "8", "--format", "json", "--out", quiz_path)[0] == 0
    quiz = json.loads(quiz_path.read_text())
    status, out, err = run_cli("grade", quiz_path, write_answers(tmp_path, quiz), "--json")
    assert status == 0, err
    result = json.loads(out)
    assert result["score"] == result["max_score"] == 10 and len(result["tests"]) == 10
    wrong = quiz["items"][3]
    bad = "1x2x3" if wrong["kind"] == "shape" else "no such layer" if wrong["kind"] == "name" else wrong["answer"] + 1
    status, out, err = run_cli("grade", quiz_path, write_answers(tmp_path, quiz, {wrong["id"]: bad}), "--json")
    result = json.loads(out)
    assert result["score"] == 9
    test = next(test for test in result["tests"] if test["name"] == wrong["id"])
    assert test["score"] == 0 and wrong["solution"][-1] in test["output"]
    status, out, err = run_cli("grade", quiz_path, write_answers(tmp_path, quiz, {wrong["id"]: bad}))
    assert status == 0 and "score: 9/10 (90%)" in out and wrong["solution"][-1] in out


def test_shapes_may_be_written_in_several_ways(tmp_path):
    quiz = quiz_json("--topic", "output-size", "--count", "3", "--seed", "1")
    quiz_path = tmp_path / "quiz.json"
    quiz_path.write_text(json.dumps(quiz))
    forms = ["{}x{}x{}", "{} × {} × {}", "[{}, {}, {}]"]
    answers = {item["id"]: form.format(*item["answer"]) for item, form in zip(quiz["items"], forms)}
    (tmp_path / "a.json").write_text(json.dumps(answers))
    status, out, err = run_cli("grade", quiz_path, tmp_path / "a.json")
    assert status == 0 and "score: 3/3" in out, out + err


@pytest.mark.parametrize("argv, message", [
    (("quiz", "--topic", "calculus"), "invalid choice: 'calculus'"),
    (("quiz", "--format", "pdf"), "invalid choice: 'pdf'"),
    (("quiz", "--count", "0"), "must be at least 1"),
    (("quiz", "--count", "100000"), "--count must be from 1 to 1,000"),
])
def test_bad_quiz_arguments(argv, message):
    status, out, err = run_cli(*argv)
    assert status == 2 and message in err


def test_bad_answer_files(tmp_path):
    quiz = quiz_json("--topic", "output-size", "--count", "3", "--seed", "1")
    quiz_path = tmp_path / "quiz.json"
    quiz_path.write_text(json.dumps(quiz))
    first = quiz["items"][0]["id"]
    cases = {
        "missing": json.dumps({first: [1, 1, 1]}),
        "not json": "{13x13x32",
        "bad shape": json.dumps({item["id"]: "13 by 13" for item in quiz["items"]}),
    }
    messages = {"missing": "the answers have no value for 2 items", "not json": "is not a readable JSON file",
                "bad shape": "should be a shape, like 13x13x32"}
    for case, text in cases.items():
        (tmp_path / "a.json").write_text(text)
        status, out, err = run_cli("grade", quiz_path, tmp_path / "a.json")
        assert status == 2 and messages[case] in err and "Traceback" not in err, (case, err)


# ------------------------------------------------------------------ French


def test_summary_in_french():
    status, out, err = run_cli("summary", "specs/mlp.net", "--lang", "fr")
    assert status == 0, err
    assert "couche" in out and "forme de sortie" in out and "paramètres" in out
    assert "235 146" in out and "235,146" not in out


def test_the_language_comes_from_lang_when_not_given(monkeypatch):
    monkeypatch.setenv("LANG", "fr_FR.UTF-8")
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    status, out, _ = run_cli("summary", "specs/mlp.net")
    assert "paramètres au total" in out
    status, out, _ = run_cli("summary", "specs/mlp.net", "--lang", "en")
    assert "total parameters" in out and "235,146" in out


def test_a_quiz_and_a_training_run_in_french():
    status, out, err = run_cli("quiz", "--topic", "iterations", "--count", "1", "--seed", "2", "--lang", "fr")
    assert status == 0 and "combien d'itérations" in " ".join(out.split()) and "Réponses" in out
    status, out, err = run_cli("input 2; dense 1 sigmoid; train epochs 2", "--data", "xor", "--lang", "fr")
    assert status == 0 and "époque" in out and "itérations par époque" in out and "matrice de confusion" in out
    assert re.search(r"perte \d,\d{4}", out) and re.search(r"\d,\d\d %", out)  # 0,7124 and 50,00 %


def test_the_compiled_catalog_matches_its_source():
    babel = pytest.importorskip("babel.messages.pofile")
    import gettext

    folder = LOCALE_DIR / "fr" / "LC_MESSAGES"
    with open(folder / "nnrun.po", "rb") as file:
        catalog = babel.read_po(file)
    with open(folder / "nnrun.mo", "rb") as file:
        compiled = gettext.GNUTranslations(file)
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            assert compiled.ngettext(*message.id, 5) == message.string[2]
        else:
            assert compiled.gettext(message.id) == message.string, message.id
