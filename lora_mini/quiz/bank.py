"""The question bank: ``lora_mini/quizzes/*.json``, one file per notebook, in jupyterquiz's schema.

A file is a list of questions; each has ``question``, ``type``, ``answers`` and, in this course, always a
``hint``, a ``kind`` (what the question asks for) and a ``section`` (the notebook section that teaches it,
"05 §1"; the review's integrative questions list several). ``12_review.json`` is the review's own exam.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from ..errors import LoraValueError
from .grading import grade
from .markup import default_order, plain, text_view

QUIZ_DIR = Path(__file__).parent.parent / "quizzes"
REVIEW_QUIZ = "12_review"  # the review notebook's exam: integrative questions, each from several notebooks
QUESTION_TYPES = ("multiple_choice", "many_choice", "numeric")
KINDS = ("decision", "concept", "compute", "recall")
SECTION = re.compile(r"^(\d\d) §(\d+)$")  # "05 §1": notebook 05, its heading "## 1. ..."
QUESTION_KEYS = {"question", "type", "answers", "hint", "precision", "check", "answer_cols", "code", "section", "kind"}
CHOICE_KEYS = {"answer", "correct", "feedback", "code"}
NUMERIC_KEYS = {"type", "value", "range", "correct", "feedback"}

TITLES = {
    "00_why_lora": "00 Why LoRA?",
    "01_toy_transformer": "01 A toy transformer",
    "02_lora_from_scratch": "02 LoRA from scratch",
    "03_counting": "03 Counting: parameters and memory",
    "04_face_off": "04 The face-off",
    "05_choosing_settings": "05 Choosing r, α, the learning rate and the targets",
    "06_inside_lora": "06 Inside the adapters",
    "07_many_adapters": "07 One base, many adapters",
    "08_what_lora_preserves": "08 What LoRA preserves",
    "09_lora_among_peers": "09 LoRA among its peers",
    "10_beyond_lora": "10 Beyond LoRA: variants and a 4-bit base",
    "11_real_model": "11 To a real Hugging Face model",
    REVIEW_QUIZ: "12 Review: the exam",
}


def quiz_title(name: str) -> str:
    """A quiz's title for headings: ``"03_counting"`` -> ``"03 Counting: parameters and memory"``."""
    return TITLES.get(name, name.replace("_", " "))


def quiz_names(quiz_dir: Path = QUIZ_DIR) -> list[str]:
    """Every quiz file's name: the notebooks' quizzes ``"00_why_lora"`` ... and the review's exam ``"12_review"``."""
    return sorted(p.stem for p in Path(quiz_dir).glob("*.json"))


def resolve_quiz(name_or_path: str | Path) -> Path:
    """A shipped quiz by name (``"02_lora_from_scratch"``, its ``.json`` or just ``"02"``), or a file path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        return path
    name = path.name.removesuffix(".json")
    if (QUIZ_DIR / f"{name}.json").is_file():
        return QUIZ_DIR / f"{name}.json"
    prefixed = [n for n in quiz_names() if n.startswith(f"{name}_")]
    if len(prefixed) == 1:
        return QUIZ_DIR / f"{prefixed[0]}.json"
    raise LoraValueError(f"no quiz called {str(name_or_path)!r}; choose one of {quiz_names()} "
                         "or pass a path to a .json file")


def load_questions(name_or_path: str | Path) -> list[dict]:
    """The questions of one quiz as a list of dicts (a fresh copy, safe to modify)."""
    path = resolve_quiz(name_or_path)
    try:
        with open(path, encoding="utf-8") as f:
            questions = json.load(f)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise LoraValueError(f"{path} is not valid JSON ({e}); fix the file, or restore it with git") from e
    if not isinstance(questions, list):
        raise LoraValueError(f"{path}: a quiz file holds a JSON list of questions, got {type(questions).__name__}")
    return questions


def quiz_text(name_or_questions: str | Path | list[dict], title: str | None = None) -> str:
    """The quiz as readable text (markdown): questions and options in file order, no answers, no feedback."""
    if isinstance(name_or_questions, (str, Path)):
        questions = load_questions(name_or_questions)
        title = title or quiz_title(resolve_quiz(name_or_questions).stem)
    else:
        questions = list(name_or_questions)
    return text_view(questions, [default_order(q) for q in questions], title or "self-check")


# ---------------------------------------------------------------------------
# Validation: jupyterquiz's schema plus the course's rules, one message per problem
# ---------------------------------------------------------------------------


def _is_number(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _text_problems(where: str, text: str) -> list[str]:
    """Text must display the same in jupyterquiz (inserted as HTML) and here (markdown + math)."""
    problems = []
    if "<" in text or "&" in text:
        problems.append(f"{where}: avoid '<' and '&' (jupyterquiz inserts text as HTML); write \\lt or words")
    if len(re.findall(r"(?<!\\)\$", text)) % 2:
        problems.append(f"{where}: unbalanced $ (math must open and close)")
    return problems


def _label_problems(where: str, q: dict) -> list[str]:
    """``kind`` and ``section``, where present, in their format (the bank's rules require them: see rules.py)."""
    problems = []
    if "kind" in q and q["kind"] not in KINDS:
        problems.append(f"{where}: kind must be one of {KINDS}, got {q['kind']!r}")
    if "section" in q:
        s = q["section"]
        sections = [s] if isinstance(s, str) else s
        if not (isinstance(sections, list) and sections and all(isinstance(x, str) and SECTION.match(x)
                                                                for x in sections)):
            problems.append(f"{where}: section must be 'NN §k' (notebook NN, its heading '## k.') or a list "
                            f"of them, got {s!r}")
    return problems


def validate_questions(questions: Any) -> list[str]:
    """Everything wrong with a list of questions, one message each; empty when the list is fine.

    Checks the jupyterquiz schema plus this course's rules: every question has a hint, every
    option its own feedback, a multiple_choice question exactly one right option, a many_choice
    question at least two (jupyterquiz shows a question with one right option as multiple choice)
    and at least one wrong, every numeric question a correct value and a ``check`` name, and
    ``kind`` / ``section`` in their format.
    """
    if not isinstance(questions, list) or not questions:
        return ["a quiz is a non-empty JSON list of questions"]
    problems: list[str] = []
    for i, q in enumerate(questions):
        where = f"question {i + 1}"
        if not isinstance(q, dict):
            problems.append(f"{where}: not an object")
            continue
        unknown = set(q) - QUESTION_KEYS
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        problems += _label_problems(where, q)
        for key in ("question", "hint"):
            if not isinstance(q.get(key), str) or not q.get(key, "").strip():
                problems.append(f"{where}: needs a non-empty string {key!r}")
            else:
                problems += _text_problems(f"{where} {key}", q[key])
        qtype, answers = q.get("type"), q.get("answers")
        if qtype not in QUESTION_TYPES:
            problems.append(f"{where}: type must be one of {QUESTION_TYPES}, got {qtype!r}")
            continue
        if not isinstance(answers, list) or not answers or not all(isinstance(a, dict) for a in answers):
            problems.append(f"{where}: 'answers' must be a non-empty list of objects")
            continue
        check = _numeric_problems if qtype == "numeric" else _choice_problems
        problems += check(where, q, answers)
    return problems


def _choice_problems(where: str, q: dict, answers: list[dict]) -> list[str]:
    problems = []
    if "precision" in q or "check" in q:
        problems.append(f"{where}: 'precision' and 'check' belong to numeric questions only")
    if "answer_cols" in q and not (isinstance(q["answer_cols"], int) and q["answer_cols"] >= 1):
        problems.append(f"{where}: answer_cols must be a positive integer")
    if len(answers) < 3:
        problems.append(f"{where}: give at least 3 options")
    for j, a in enumerate(answers):
        at = f"{where} option {j + 1}"
        if set(a) - CHOICE_KEYS:
            problems.append(f"{at}: unknown keys {sorted(set(a) - CHOICE_KEYS)}")
        if not isinstance(a.get("answer"), str) or not a.get("answer", "").strip():
            problems.append(f"{at}: needs a non-empty string 'answer'")
        else:
            problems += _text_problems(at, a["answer"])
            if "$" in a["answer"]:
                problems.append(f"{at}: no $math$ in options (they show as plain text); use Unicode (×, α, √)")
        if not isinstance(a.get("correct"), bool):
            problems.append(f"{at}: 'correct' must be true or false")
        if not isinstance(a.get("feedback"), str) or not a.get("feedback", "").strip():
            problems.append(f"{at}: needs its own 'feedback' saying why it is right or wrong")
        else:
            problems += _text_problems(f"{at} feedback", a["feedback"])
    labels = [plain(a["answer"]) for a in answers if isinstance(a.get("answer"), str)]
    if len(set(labels)) != len(labels):
        problems.append(f"{where}: two options read the same")
    n_right = sum(a.get("correct") is True for a in answers)
    if q["type"] == "multiple_choice" and n_right != 1:
        problems.append(f"{where}: a multiple_choice question needs exactly one correct option, has {n_right}")
    if q["type"] == "many_choice" and (n_right < 2 or n_right == len(answers)):
        problems.append(f"{where}: a many_choice question needs at least two correct options and one wrong, has "
                        f"{n_right} of {len(answers)} correct")
    return problems


def _numeric_problems(where: str, q: dict, answers: list[dict]) -> list[str]:
    problems = []
    if not isinstance(q.get("check"), str) or not re.fullmatch(r"[a-z][a-z0-9_]*", q.get("check", "")):
        problems.append(f"{where}: a numeric question needs 'check', the name of the test that recomputes it")
    if "precision" in q and not (isinstance(q["precision"], int) and not isinstance(q["precision"], bool)
                                 and q["precision"] >= 1):
        problems.append(f"{where}: precision must be a positive integer (significant digits)")
    if "answer_cols" in q:
        problems.append(f"{where}: answer_cols belongs to choice questions")
    for j, a in enumerate(answers):
        at = f"{where} answer {j + 1}"
        if set(a) - NUMERIC_KEYS:
            problems.append(f"{at}: unknown keys {sorted(set(a) - NUMERIC_KEYS)}")
        kind = a.get("type")
        if kind not in ("value", "range", "default"):
            problems.append(f"{at}: type must be 'value', 'range' or 'default'")
            continue
        if not isinstance(a.get("feedback"), str) or not a.get("feedback", "").strip():
            problems.append(f"{at}: needs a 'feedback'")
        else:
            problems += _text_problems(f"{at} feedback", a["feedback"])
        if kind == "value" and not _is_number(a.get("value")):
            problems.append(f"{at}: 'value' must be a number")
        if kind == "range":
            rng = a.get("range")
            if not (isinstance(rng, list) and len(rng) == 2 and all(map(_is_number, rng)) and rng[0] < rng[1]):
                problems.append(f"{at}: 'range' must be [lo, hi] with lo < hi")
        if kind != "default" and not isinstance(a.get("correct"), bool):
            problems.append(f"{at}: 'correct' must be true or false")
        if kind == "default" and ("correct" in a or "value" in a or "range" in a):
            problems.append(f"{at}: a default answer has only a feedback")
    kinds = [a.get("type") for a in answers]
    if kinds.count("default") != 1 or kinds[-1] != "default":
        problems.append(f"{where}: end the answers with exactly one 'default' (the feedback for anything else)")
    right = [a for a in answers if a.get("type") == "value" and a.get("correct") is True]
    if len(right) != 1:
        problems.append(f"{where}: needs exactly one correct 'value' answer, has {len(right)}")
    elif not problems and not grade(q, right[0]["value"]).correct:
        problems.append(f"{where}: the correct value is caught by an earlier answer and graded wrong")
    return problems
