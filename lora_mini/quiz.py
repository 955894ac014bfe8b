"""Self-check quizzes for the notebooks: ``show_quiz("02_lora_from_scratch")``.

The questions live in ``lora_mini/quizzes/*.json``, one file per notebook, in the schema of the
``jupyterquiz`` package (a list of questions; each has ``question``, ``type``, ``answers`` and, here,
always a ``hint``). This module shows them with plain ipywidgets, offline:

- question text as an ``HTMLMath`` widget: a few markdown marks (**bold**, `code`) are converted
  here, and ``$...$`` math is left for the widget's own MathJax typesetting;
- the options as ``RadioButtons`` (one answer), a column of ``Checkbox`` es (all that apply) or a
  ``Text`` box (a number: "1500", "1,500", "2/3", "1.5e3" and "1.32%" are all accepted);
- buttons **Check**, **Hint** and **Try again**; after Check, the feedback of the chosen option(s);
- a running score, "4 / 8 correct on first try".

Without a widget frontend (a plain Python console, a notebook exported to HTML) the quiz shows as
readable text: the questions and options only, never which option is right or any feedback.
Numeric answers are graded exactly as jupyterquiz grades them (``precision`` = significant digits,
``range`` = [lo, hi), the first matching answer wins, then the ``default`` feedback).
"""
from __future__ import annotations

import copy
import html
import json
import math
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from .errors import LoraValueError

QUIZ_DIR = Path(__file__).parent / "quizzes"
QUESTION_TYPES = ("multiple_choice", "many_choice", "numeric")
_QUESTION_KEYS = {"question", "type", "answers", "hint", "precision", "check", "answer_cols", "code", "section", "kind"}
_CHOICE_KEYS = {"answer", "correct", "feedback", "code"}
_NUMERIC_KEYS = {"type", "value", "range", "correct", "feedback"}

__all__ = ["QUIZ_DIR", "Quiz", "QuestionCard", "grade", "load_questions", "quiz_names", "quiz_text",
           "show_quiz", "validate_questions"]


# ---------------------------------------------------------------------------
# Loading and validating the question bank
# ---------------------------------------------------------------------------


def quiz_names() -> list[str]:
    """The quizzes that ship with lora_mini, e.g. ``["00_why_lora", "01_toy_transformer", ...]``."""
    return sorted(p.stem for p in QUIZ_DIR.glob("*.json"))


def _resolve(name_or_path: str | Path) -> Path:
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
    raise ValueError(f"no quiz called {str(name_or_path)!r}; choose one of {quiz_names()} or pass a path to a .json file")


def load_questions(name_or_path: str | Path) -> list[dict]:
    """The questions of one quiz as a list of dicts (a fresh copy, safe to modify)."""
    path = _resolve(name_or_path)
    try:
        with open(path, encoding="utf-8") as f:
            questions = json.load(f)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise LoraValueError(f"{path} is not valid JSON ({e}); fix the file, or restore it with git") from e
    if not isinstance(questions, list):
        raise LoraValueError(f"{path}: a quiz file holds a JSON list of questions, got {type(questions).__name__}")
    return questions


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


def validate_questions(questions: Any) -> list[str]:
    """Everything wrong with a list of questions, one message each; empty when the list is fine.

    Checks the jupyterquiz schema plus this course's rules: every question has a hint, every
    option its own feedback, a multiple_choice question exactly one right option, a many_choice
    question at least two (jupyterquiz shows a question with one right option as multiple choice)
    and at least one wrong, and every numeric question a correct value and a ``check`` name.
    """
    if not isinstance(questions, list) or not questions:
        return ["a quiz is a non-empty JSON list of questions"]
    problems: list[str] = []
    for i, q in enumerate(questions):
        where = f"question {i + 1}"
        if not isinstance(q, dict):
            problems.append(f"{where}: not an object")
            continue
        unknown = set(q) - _QUESTION_KEYS
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
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
        if qtype == "numeric":
            problems += _numeric_problems(where, q, answers)
        else:
            problems += _choice_problems(where, q, answers)
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
        if set(a) - _CHOICE_KEYS:
            problems.append(f"{at}: unknown keys {sorted(set(a) - _CHOICE_KEYS)}")
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
    labels = [_plain(a["answer"]) for a in answers if isinstance(a.get("answer"), str)]
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
        if set(a) - _NUMERIC_KEYS:
            problems.append(f"{at}: unknown keys {sorted(set(a) - _NUMERIC_KEYS)}")
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


# ---------------------------------------------------------------------------
# Grading: one pure function, used by the widget and by the tests
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    """The outcome of one Check: right or not, and the feedback to show (markdown)."""

    correct: bool
    feedback: str


def _round_sig(x: float, digits: int) -> float:
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
        lines = [f"- *{_plain(answers[i]['answer'])}*: {answers[i]['feedback']}" for i in ticked]
        missing = len(right - set(ticked))
        if missing:
            lines.append(f"- {missing} more option{'s' if missing > 1 else ''} also appl{'y' if missing > 1 else 'ies'}.")
        return Result(set(ticked) == right, "\n".join(lines))
    # numeric, as jupyterquiz's check_numeric(): first matching value or range wins, else default
    x = float(response)
    precision = question.get("precision")
    if precision:
        x = _round_sig(x, precision)
    for a in answers:
        if a["type"] == "value":
            value = _round_sig(a["value"], precision) if precision else a["value"]
            if x == value:
                return Result(a["correct"], a["feedback"])
        elif a["type"] == "range" and a["range"][0] <= x < a["range"][1]:
            return Result(a["correct"], a["feedback"])
    default = next((a["feedback"] for a in answers if a["type"] == "default"), "Not this number. Try again.")
    return Result(False, default)


# ---------------------------------------------------------------------------
# Text: a few markdown marks to HTML for the widgets, and the answer-free text view
# ---------------------------------------------------------------------------

_MATH = re.compile(r"(\$\$.+?\$\$|(?<!\\)\$.+?(?<!\\)\$)", re.S)
_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")


def _md_to_html(text: str) -> str:
    """Markdown-lite to HTML: `code`, **bold**, *italic*, line breaks, "- " lists; $math$ kept for MathJax."""
    out = []
    for k, part in enumerate(_MATH.split(text)):
        if k % 2:  # math: only escape, the widget's MathJax typesets it
            out.append(html.escape(part, quote=False))
            continue
        pieces = []
        for m, piece in enumerate(_CODE.split(part)):
            piece = html.escape(piece, quote=False)
            if m % 2:
                pieces.append(f"<code>{piece}</code>")
            else:
                piece = _BOLD.sub(r"<b>\1</b>", piece)
                pieces.append(_ITALIC.sub(r"<i>\1</i>", piece))
        out.append("".join(pieces))
    lines = "".join(out).split("\n")
    if len(lines) > 1 and all(line.startswith("- ") for line in lines):
        return "<ul>" + "".join(f"<li>{line[2:]}</li>" for line in lines) + "</ul>"
    return "<br>".join(lines)


def _plain(text: str) -> str:
    """An option as plain text for a RadioButtons / Checkbox label: markdown marks removed."""
    return _BOLD.sub(r"\1", _CODE.sub(r"\1", text))


_EXAMPLE = "a number, e.g. 1500, 1,500, 2/3 or 1.5e3"  # none of these is an answer in the bank
_KIND = {"multiple_choice": "choose one", "many_choice": "choose all that apply", "numeric": "type a number"}


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
}


def _title(name: str) -> str:
    return TITLES.get(name, name.replace("_", " "))


def _text_view(questions: Sequence[dict], orders: Sequence[Sequence[int]], title: str) -> str:
    lines = [f"**Quiz: {title}** ({len(questions)} questions; run the notebook in JupyterLab to check your answers)", ""]
    for n, (q, order) in enumerate(zip(questions, orders), start=1):
        lines.append(f"{n}. {q['question']} *({_KIND[q['type']]})*")
        for letter, j in zip("abcdefghijklmnopqrstuvwxyz", order):
            lines.append(f"    - {letter}) {_plain(q['answers'][j]['answer'])}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def quiz_text(name_or_questions: str | Path | Sequence[dict], title: str | None = None) -> str:
    """The quiz as readable text (markdown): questions and options in file order, no answers, no feedback."""
    if isinstance(name_or_questions, (str, Path)):
        questions = load_questions(name_or_questions)
        title = title or _title(_resolve(name_or_questions).stem)
    else:
        questions = list(name_or_questions)
    orders = [list(range(len(q["answers"]))) if q["type"] != "numeric" else [] for q in questions]
    return _text_view(questions, orders, title or "self-check")


# ---------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------

_CSS = """<style>
.lora-quiz-card { border: 1px solid var(--jp-border-color2, #ccc); border-radius: 6px; padding: 2px 12px 8px; margin: 6px 0; }
.lora-quiz-options .widget-radio-box label { display: flex; align-items: flex-start; height: auto; line-height: 1.4; white-space: normal; margin: 3px 0; }
.lora-quiz-options .widget-radio-box label input { order: -1; float: none; flex: none; height: 1.4em; line-height: 1.4; }
.lora-quiz-options .widget-checkbox { height: auto; width: auto; }
.lora-quiz-options .widget-label-basic { display: flex; align-items: flex-start; white-space: normal; overflow: visible; height: auto; line-height: 1.4; }
.lora-quiz-options .widget-label-basic input { flex: none; margin-top: 0.2em; }
.lora-quiz-correct { border-left: 4px solid var(--jp-success-color1, #2e7d32); padding-left: 8px; }
.lora-quiz-wrong { border-left: 4px solid var(--jp-error-color1, #c62828); padding-left: 8px; }
.lora-quiz-hint { font-style: italic; }
.lora-quiz-score { font-weight: bold; }
</style>"""


def _feedback_html(result: Result) -> str:
    """"<b>Correct.</b> why" or "<b>Not quite.</b> why"; a verdict the feedback repeats is dropped."""
    verdict = "Correct" if result.correct else "Not quite"
    said = r"(Right|Correct)[.:!]\s+" if result.correct else r"(Not quite|Wrong|Incorrect|No)[.:!]\s+"
    text = re.sub(f"^{said}", "", result.feedback, flags=re.I)
    return f"<b>{verdict}.</b> {_md_to_html(text[:1].upper() + text[1:])}"


class QuestionCard:
    """One question's widgets. ``choice`` is the input: RadioButtons, a VBox of Checkboxes, or a Text box.

    ``order`` lists the indices into ``question["answers"]`` in the order shown, and ``options`` the
    answers themselves in that order.
    """

    notebook: str | None = None  # the quiz to save first tries under (lora_mini.progress); None: not saved

    def __init__(self, question: dict, number: int, order: Sequence[int], on_change) -> None:
        import ipywidgets as W

        self.question = question
        self.order = list(order)
        self.options = [question["answers"][j] for j in self.order]
        self.first_try: bool | None = None  # set by the first Check that has an answer
        self.checked = False
        self._on_change = on_change
        qtype = question["type"]
        self.text = W.HTMLMath(value=f"<b>{number}.</b> {_md_to_html(question['question'])}")
        self.text.add_class("lora-quiz-question")
        self.checkboxes: list = []
        if qtype == "multiple_choice":
            self.choice = W.RadioButtons(options=[(_plain(a["answer"]), j) for a, j in zip(self.options, self.order)],
                                         value=None, layout=W.Layout(width="auto"))
        elif qtype == "many_choice":
            self.checkboxes = [W.Checkbox(value=False, description=_plain(a["answer"]), indent=False,
                                          layout=W.Layout(width="auto")) for a in self.options]
            self.choice = W.VBox(self.checkboxes)
        else:
            self.choice = W.Text(value="", placeholder=_EXAMPLE, description="Answer:")
        self.choice.add_class("lora-quiz-options")
        self.check_button = W.Button(description="Check", button_style="primary", tooltip="Check your answer")
        self.hint_button = W.Button(description="Hint", tooltip="Show a hint")
        self.retry_button = W.Button(description="Try again", disabled=True, tooltip="Clear your answer")
        for button, cls in [(self.check_button, "check"), (self.hint_button, "hint-button"),
                            (self.retry_button, "retry")]:
            button.add_class(f"lora-quiz-{cls}")
        self.hint = W.HTMLMath(value="")
        self.hint.add_class("lora-quiz-hint")
        self.feedback = W.HTMLMath(value="")
        self.feedback.add_class("lora-quiz-feedback")
        self.check_button.on_click(lambda _: self.check())
        self.hint_button.on_click(lambda _: self.show_hint())
        self.retry_button.on_click(lambda _: self.reset())
        buttons = W.HBox([self.check_button, self.hint_button, self.retry_button])
        self.widget = W.VBox([self.text, self.choice, buttons, self.hint, self.feedback])
        self.widget.add_class("lora-quiz-card")
        self.widget.add_class(f"lora-quiz-{qtype.replace('_', '-')}")

    def response(self) -> Any:
        """The current answer (see :func:`grade`), or None if nothing is chosen or typed yet."""
        qtype = self.question["type"]
        if qtype == "multiple_choice":
            return self.choice.value
        if qtype == "many_choice":
            ticked = [j for j, box in zip(self.order, self.checkboxes) if box.value]
            return ticked or None
        return parse_number(self.choice.value)

    def _set_inputs_disabled(self, disabled: bool) -> None:
        for w in self.checkboxes or [self.choice]:
            w.disabled = disabled

    def check(self) -> Result | None:
        """What the Check button does: grade, show feedback, lock the answer until Try again."""
        response = self.response()
        if response is None:
            ask = {"multiple_choice": "Choose an option first.", "many_choice": "Tick at least one option first.",
                   "numeric": f"Type a number first ({_EXAMPLE})."}
            self.feedback.value = ask[self.question["type"]]
            return None
        result = grade(self.question, response)
        self.feedback.value = _feedback_html(result)
        self.feedback.remove_class("lora-quiz-correct" if not result.correct else "lora-quiz-wrong")
        self.feedback.add_class("lora-quiz-correct" if result.correct else "lora-quiz-wrong")
        if self.first_try is None:
            self.first_try = result.correct
            if self.notebook:  # kept across restarts for the review; never required
                from .progress import record_first_try

                record_first_try(self.notebook, self.question, result.correct)
        self.checked = True
        self._set_inputs_disabled(True)
        self.check_button.disabled = True
        self.retry_button.disabled = False
        self._on_change()
        return result

    def show_hint(self) -> None:
        self.hint.value = f"<b>Hint:</b> {_md_to_html(self.question['hint'])}"

    def reset(self) -> None:
        """What Try again does: clear the answer and the feedback (the first-try score stays)."""
        if self.question["type"] == "multiple_choice":
            self.choice.value = None
        elif self.question["type"] == "many_choice":
            for box in self.checkboxes:
                box.value = False
        else:
            self.choice.value = ""
        self._set_inputs_disabled(False)
        self.feedback.value = ""
        self.feedback.remove_class("lora-quiz-correct")
        self.feedback.remove_class("lora-quiz-wrong")
        self.check_button.disabled = False
        self.retry_button.disabled = True
        self.checked = False


class Quiz:
    """A quiz of ``questions`` as ipywidgets; display it, or use ``quiz.widget`` (a VBox).

    Options are shuffled per Quiz unless ``shuffle=False``; ``seed`` makes the shuffle repeatable.
    Displayed without a widget frontend, it shows as text without answers (see :func:`quiz_text`).
    """

    def __init__(self, questions: Sequence[dict], shuffle: bool = True, seed: int | None = None,
                 title: str = "self-check", notebook: str | None = None) -> None:
        import ipywidgets as W

        problems = validate_questions(list(questions))
        if problems:
            raise ValueError("these questions cannot be shown:\n  " + "\n  ".join(problems))
        self.questions = copy.deepcopy(list(questions))
        self.title = title
        rng = random.Random(seed)
        self.cards: list[QuestionCard] = []
        for n, q in enumerate(self.questions, start=1):
            order = list(range(len(q["answers"]))) if q["type"] != "numeric" else []
            if shuffle:
                rng.shuffle(order)
            self.cards.append(QuestionCard(q, n, order, self._update_score))
            self.cards[-1].notebook = notebook  # first tries saved under this name (show_quiz passes it)
        self.score_label = W.HTML(value="")
        self.score_label.add_class("lora-quiz-score")
        self._update_score()
        heading = W.HTML(value=f"{_CSS}<b>Quiz: {html.escape(title)}</b> (Check as often as you like; the score "
                               f"counts answers right on the first Check.)")
        self.widget = W.VBox([heading, *[c.widget for c in self.cards], self.score_label])
        self.widget.add_class("lora-quiz")

    @property
    def score(self) -> int:
        """Questions whose first Check was right."""
        return sum(card.first_try is True for card in self.cards)

    def _update_score(self) -> None:
        self.score_label.value = f"{self.score} / {len(self.cards)} correct on first try"

    def text(self) -> str:
        """The quiz as readable text in the order shown, without answers or feedback."""
        return _text_view(self.questions, [c.order for c in self.cards], self.title)

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        # The widget where a frontend can show it; otherwise (nbconvert, untrusted notebook, console)
        # Jupyter falls back to the markdown or plain text, which never contain the answers.
        bundle = self.widget._repr_mimebundle_() or {}
        return {**bundle, "text/plain": self.text(), "text/markdown": self.text()}


def show_quiz(name_or_path: str | Path, shuffle: bool = True, seed: int | None = None) -> None:
    """Show one notebook's quiz, e.g. ``show_quiz("02_lora_from_scratch")`` (or ``show_quiz("02")``)."""
    from IPython.display import display

    path = _resolve(name_or_path)
    display(Quiz(load_questions(path), shuffle=shuffle, seed=seed, title=_title(path.stem), notebook=path.stem))


def _close_tree(widget) -> None:
    """Close a widget, its children and its layout/style models, so the frontend drops them all."""
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    for part in ("layout", "style"):
        sub = getattr(widget, part, None)
        if sub is not None and hasattr(sub, "close"):
            sub.close()
    widget.close()


class Review:
    """Every question of the course, shuffled, shown ONE at a time, with a first-try score per notebook.

    Previous / Next walk through the questions and a selector jumps to a notebook's first question.
    Only the question on screen has widgets (about 25 widget models in all, whatever the bank's size):
    a page holding every question at once made thousands, which JupyterLab did not always render.
    ``first_try[i]`` remembers question i's first Check across visits to it.
    """

    def __init__(self, seed: int | None = None, notebook_dir: str = "") -> None:
        import ipywidgets as W

        bank = {name: load_questions(name) for name in quiz_names()}
        items = [(name, q) for name, questions in bank.items() for q in questions]
        rng = random.Random(seed)
        rng.shuffle(items)
        self.topics = [name for name, _ in items]
        self.questions = [q for _, q in items]
        self.orders = []
        for q in self.questions:
            order = list(range(len(q["answers"]))) if q["type"] != "numeric" else []
            rng.shuffle(order)
            self.orders.append(order)
        self.first_try: list[bool | None] = [None] * len(self.questions)
        from .progress import summary  # earlier visits' first tries, as saved when this review opened

        self.earlier = summary(bank)
        self.notebook_dir = notebook_dir
        self.index, self.card = 0, None
        self.prev_button = W.Button(description="◀ Previous", tooltip="The previous question")
        self.next_button = W.Button(description="Next ▶", tooltip="The next question")
        self.position = W.HTML(value="")
        names = list(dict.fromkeys(sorted(self.topics)))
        self.jump = W.Dropdown(options=[("jump to a notebook…", "")] + [(_title(n), n) for n in names], value="")
        self.prev_button.on_click(lambda _: self.go(self.index - 1))
        self.next_button.on_click(lambda _: self.go(self.index + 1))
        self.jump.observe(self._jump, names="value")
        for w, cls in [(self.prev_button, "prev"), (self.next_button, "next"), (self.jump, "jump")]:
            w.add_class(f"lora-review-{cls}")
        self.holder = W.VBox([])
        self.score_label = W.HTML(value="")
        self.score_label.add_class("lora-quiz-score")
        self.topic_table = W.HTML(value="")
        self.topic_table.add_class("lora-quiz-topics")
        heading = W.HTML(value=f"{_CSS}<b>Quiz: review of the whole course</b> ({len(self.questions)} questions, "
                               f"one at a time; the score counts answers right on the first Check.)")
        nav = W.HBox([self.prev_button, self.position, self.next_button, self.jump])
        self.widget = W.VBox([heading, nav, self.holder, self.score_label, self.topic_table])
        self.widget.add_class("lora-quiz")
        self.go(0)

    def go(self, i: int) -> QuestionCard:
        """Show question i (0-based, clamped to the bank) in place of the one on screen."""
        i = max(0, min(int(i), len(self.questions) - 1))
        if self.card is not None:
            _close_tree(self.card.widget)
        self.index = i
        self.card = QuestionCard(self.questions[i], i + 1, self.orders[i], self._record)
        self.card.first_try = self.first_try[i]
        self.card.notebook = self.topics[i]  # a first try here is saved under the question's own notebook
        self.holder.children = (self.card.widget,)
        self.position.value = f"question {i + 1} of {len(self.questions)} · from <i>{html.escape(_title(self.topics[i]))}</i>"
        self.prev_button.disabled = i == 0
        self.next_button.disabled = i == len(self.questions) - 1
        self._update_score()
        return self.card

    def _jump(self, change) -> None:
        if change["new"]:
            self.go(self.topics.index(change["new"]))
            self.jump.value = ""

    def _record(self) -> None:
        self.first_try[self.index] = self.card.first_try
        self._update_score()

    @property
    def score(self) -> int:
        """Questions whose first Check was right."""
        return sum(t is True for t in self.first_try)

    def topic_scores(self) -> dict[str, tuple[int, int, int]]:
        """{notebook: (right on first try, checked, questions)}."""
        scores = {name: [0, 0, 0] for name in dict.fromkeys(sorted(self.topics))}
        for name, first in zip(self.topics, self.first_try):
            scores[name][0] += first is True
            scores[name][1] += first is not None
            scores[name][2] += 1
        return {name: (a, b, c) for name, (a, b, c) in scores.items()}

    def _update_score(self) -> None:
        self.score_label.value = f"{self.score} / {len(self.questions)} correct on first try"
        rows = "".join(
            f"<tr><td><a href='{self.notebook_dir}{name}.ipynb' target='_blank'>{html.escape(name)}</a></td>"
            f"<td>{right} / {checked} checked</td><td>{total} questions</td><td>{self._earlier(name)}</td></tr>"
            for name, (right, checked, total) in self.topic_scores().items()
        )
        self.topic_table.value = (f"<b>Score per notebook</b> (right on first try)<table>{rows}</table>"
                                  "<i>Earlier visits: first tries saved by the quizzes (lora_mini.progress); "
                                  "<code>clear_progress()</code> forgets them.</i>")

    def _earlier(self, name: str) -> str:
        if name not in self.earlier:
            return "earlier visits: none saved"
        right, tried, when = self.earlier[name]
        return f"earlier visits: {right} / {tried} right on first try (latest {when})"

    def text(self) -> str:
        """Every question as readable text in the order shown, without answers or feedback."""
        return _text_view(self.questions, self.orders, "review of the whole course")

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = self.widget._repr_mimebundle_() or {}
        return {**bundle, "text/plain": self.text(), "text/markdown": self.text()}


def show_review(seed: int | None = None) -> None:
    """Show every question of the course, shuffled, one at a time, with a score per notebook (12_review.ipynb)."""
    from IPython.display import display

    display(Review(seed=seed))
