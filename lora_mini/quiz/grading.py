"""Grading: one pure function, used by the widget and by the tests, and the number reader for typed answers.

Numeric answers are graded exactly as jupyterquiz grades them (``precision`` = significant digits,
``range`` = [lo, hi), the first matching answer wins, then the ``default`` feedback).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .markup import plain


@dataclass(frozen=True)
class Result:
    """The outcome of one Check: right or not, and the feedback to show (markdown)."""

    correct: bool
    feedback: str


def round_sig(x: float, digits: int) -> float:
    """``x`` to ``digits`` significant digits, like JavaScript's Number(x.toPrecision(digits))."""
    return float(f"{x:.{digits}g}")


_PLAIN = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"  # 3072, 3072.5, .5, 1.5e3
_GROUPED = r"[+-]?\d{1,3}(?:(?P<sep>[,_ ])\d{3})(?:(?P=sep)\d{3})*(?:\.\d*)?(?:[eE][+-]?\d+)?"  # 3,072 / 1 000 000.5
_NUMBER = re.compile(rf"(?:{_PLAIN}|{_GROUPED})")


def _read_one(s: str) -> float:
    if not _NUMBER.fullmatch(s):
        raise ValueError(s)
    return float(re.sub(r"[,_ ]", "", s))


def parse_number(text: str) -> float | None:
    """A typed number: "3072", "3,072", "3 072", "1/2", "1.5e6", "1.32%" (read as 1.32); None if unreadable.

    The rule: digits with an optional decimal point, exponent, sign and trailing %, or a fraction a/b of two
    such. Thousands may be grouped by commas, underscores or spaces (any Unicode space: non-breaking, thin, ...),
    one kind per number, always three digits per group: "3,07,2" and "1,5" are not numbers (never 3072 or 15).
    """
    s = re.sub(r"\s", " ", str(text)).strip().removesuffix("%").strip()
    try:
        if s.count("/") == 1:
            num, den = (part.strip() for part in s.split("/"))
            value = _read_one(num) / _read_one(den)
        else:
            value = _read_one(s)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return value if math.isfinite(value) else None


def grade(question: dict, response: Any) -> Result:
    """Grade ``response`` to ``question``.

    multiple_choice: the index of the chosen answer in ``question["answers"]``;
    many_choice: the indices of all ticked answers; numeric: a number.
    """
    answers = question["answers"]
    if question["type"] == "multiple_choice":
        chosen = answers[int(response)]
        return Result(chosen["correct"], chosen["feedback"])
    if question["type"] == "many_choice":
        ticked = sorted(set(response))
        right = {i for i, a in enumerate(answers) if a["correct"]}
        lines = [f"- *{plain(answers[i]['answer'])}*: {answers[i]['feedback']}" for i in ticked]
        missing = len(right - set(ticked))
        if missing:
            lines.append(f"- {missing} more option{'s' if missing > 1 else ''} also appl{'y' if missing > 1 else 'ies'}.")
        return Result(set(ticked) == right, "\n".join(lines))
    # numeric, as jupyterquiz's check_numeric(): first matching value or range wins, else default
    x = float(response)
    precision = question.get("precision")
    if precision:
        x = round_sig(x, precision)
    for a in answers:
        if a["type"] == "value":
            value = round_sig(a["value"], precision) if precision else a["value"]
            if x == value:
                return Result(a["correct"], a["feedback"])
        elif a["type"] == "range" and a["range"][0] <= x < a["range"][1]:
            return Result(a["correct"], a["feedback"])
    default = next((a["feedback"] for a in answers if a["type"] == "default"), "Not this number. Try again.")
    return Result(False, default)
