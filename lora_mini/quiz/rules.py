"""The bank's rules for questions (issue 14), measured: what each question asks for, where it is taught,
whether its answer can be guessed from the options' lengths, and whether its hint gives the answer away.

- kind: "decision" (a practitioner's choice, answered from what the course measured), "concept" (why or
  how something works), "compute" (computing the number is the lesson), "recall" (a figure of the toy or
  a detail of lora_mini). Decisions >= 1/3 of the bank, recall <= 5%.
- section: the section that teaches the question, "NN §k" (notebook NN, its heading "## k. ..."), never
  in a notebook after the quiz's own; the review's exam questions list >= 2 sections of different notebooks.
- length cue: among single-answer questions, the correct option is strictly the longest in <= 1/3 of them.
- hint: shares no run of five or more words with a correct option.

``scripts/quiz_bank_report.py`` prints the report; ``tests/test_quiz.py`` asserts it.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from .bank import KINDS, REVIEW_QUIZ, SECTION, load_questions, quiz_names
from .markup import plain

DECISION_MIN = 1 / 3  # share of the bank
RECALL_MAX = 0.05  # share of the bank
LENGTH_CUE_MAX = 1 / 3  # share of single-answer questions whose correct option is strictly the longest
HINT_RUN = 5  # words a hint may not share in a row with a correct option


def notebook_sections(notebook_dir: str | Path) -> dict[str, set[int]]:
    """{"05": {1, 2, ...}}: the numbered "## k." headings of every numbered notebook in ``notebook_dir``."""
    out = {}
    for path in sorted(Path(notebook_dir).glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        out[path.name[:2]] = {int(m) for m in re.findall(r"^## (\d+)\.", text, re.M)}
    return out


def sections_of(question: dict) -> list[str]:
    """A question's sections as a list ("05 §1" -> ["05 §1"])."""
    s = question.get("section")
    return [s] if isinstance(s, str) else list(s or [])


def words(text: str) -> list[str]:
    return re.findall(r"\w+", plain(text).lower())


def shared_run(a: str, b: str, n: int = HINT_RUN) -> str | None:
    """The first run of ``n`` words that ``a`` and ``b`` share (case and punctuation ignored), or None."""
    wa, wb = words(a), words(b)
    runs = {tuple(wb[i:i + n]) for i in range(len(wb) - n + 1)}
    return next((" ".join(wa[i:i + n]) for i in range(len(wa) - n + 1) if tuple(wa[i:i + n]) in runs), None)


def kind_problems(question: dict) -> list[str]:
    kind = question.get("kind")
    return [] if kind in KINDS else [f"kind {kind!r} is not one of {KINDS}"]


def section_problems(quiz: str, question: dict, sections: dict[str, set[int]]) -> list[str]:
    """The sections exist (a "## k." heading in notebook NN) and come no later than the quiz's notebook."""
    listed = sections_of(question)
    if not listed:
        return ["no section: add the notebook section that teaches it, e.g. \"section\": \"05 §1\""]
    problems = []
    review = quiz == REVIEW_QUIZ
    for s in listed:
        m = SECTION.match(s) if isinstance(s, str) else None
        if not m:
            problems.append(f"section {s!r} is not 'NN §k'")
        elif int(m.group(2)) not in sections.get(m.group(1), set()):
            problems.append(f"section {s!r}: notebook {m.group(1)} has no heading '## {m.group(2)}.'")
        elif m.group(1) > quiz[:2] or (review and m.group(1) == quiz[:2]):
            problems.append(f"section {s!r} comes after what this quiz may ask (notebook {quiz[:2]})")
    notebooks = {s[:2] for s in listed if isinstance(s, str)}
    if review and (isinstance(question.get("section"), str) or len(notebooks) < 2):
        problems.append("an exam question of the review lists sections of at least two notebooks")
    return problems


def hint_problems(question: dict) -> list[str]:
    right = [a.get("answer", "") for a in question["answers"] if a.get("correct") and "answer" in a]
    runs = [shared_run(question.get("hint", ""), r) for r in right]
    return [f"hint restates the correct option: '{run}'" for run in runs if run]


def question_problems(quiz: str, question: dict, sections: dict[str, set[int]]) -> list[str]:
    """Every rule a single question breaks (kind, section, hint), one message each."""
    return kind_problems(question) + section_problems(quiz, question, sections) + hint_problems(question)


def correct_is_longest(question: dict) -> bool:
    """A single-answer question whose correct option is strictly the longest (as shown: markdown removed)."""
    lengths = [(len(plain(a["answer"])), a["correct"]) for a in question["answers"]]
    best = max(n for n, _ in lengths)
    return [c for n, c in lengths if n == best] == [True]


def counts(questions: list[dict]) -> dict[str, int]:
    """{"questions", "decision", "concept", "compute", "recall", "single", "longest"} for a list of questions."""
    single = [q for q in questions if q["type"] == "multiple_choice"]
    return {"questions": len(questions), **{k: sum(q.get("kind") == k for q in questions) for k in KINDS},
            "single": len(single), "longest": sum(correct_is_longest(q) for q in single)}


def share_problems(total: dict[str, int]) -> list[str]:
    """The bank-wide shares against their limits: decisions, recall, length cue."""
    n, single = max(total["questions"], 1), max(total["single"], 1)
    problems = []
    if total["decision"] / n < DECISION_MIN:
        problems.append(f"decision share {total['decision']}/{n} is under {DECISION_MIN:.1%}")
    if total["recall"] / n > RECALL_MAX:
        problems.append(f"recall share {total['recall']}/{n} is over {RECALL_MAX:.0%}")
    if total["longest"] / single > LENGTH_CUE_MAX:
        problems.append(f"length cue: the correct option is strictly the longest in {total['longest']}/{single} "
                        f"single-answer questions, over {LENGTH_CUE_MAX:.1%}")
    return problems


def bank_report(quiz_dir: str | Path, notebook_dir: str | Path) -> dict:
    """{"files": {name: counts}, "total": counts, "problems": ["03_counting Q2: ...", ...]} for a quiz folder."""
    sections = notebook_sections(notebook_dir)
    files, problems = {}, []
    for name in quiz_names(quiz_dir):
        questions = load_questions(Path(quiz_dir) / f"{name}.json")
        files[name] = counts(questions)
        problems += [f"{name} Q{i + 1}: {p}" for i, q in enumerate(questions)
                     for p in question_problems(name, q, sections)]
    total = {k: sum(f[k] for f in files.values()) for k in ("questions", *KINDS, "single", "longest")}
    return {"files": files, "total": total, "problems": problems + share_problems(total)}
