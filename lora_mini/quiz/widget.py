"""The quiz as plain ipywidgets, offline: one card per question, a first-try score, a text fallback.

- question text as an ``HTMLMath`` widget: a few markdown marks (**bold**, `code`) are converted,
  and ``$...$`` math is left for the widget's own MathJax typesetting;
- the options as ``RadioButtons`` (one answer), a column of ``Checkbox`` es (all that apply) or a
  ``Text`` box (a number: "1500", "1,500", "2/3", "1.5e3" and "1.32%" are all accepted);
- buttons **Check**, **Hint** and **Try again**; after Check, the feedback of the chosen option(s);
- a running score, "4 / 8 correct on first try".

Without a widget frontend (a plain Python console, a notebook exported to HTML) the quiz shows as
readable text: the questions and options only, never which option is right or any feedback.
"""
from __future__ import annotations

import copy
import html
import random
import re
from pathlib import Path
from typing import Any, Sequence

from ..errors import LoraValueError
from ..progress import record_first_try
from .bank import load_questions, quiz_title, resolve_quiz, validate_questions
from .css import CSS
from .grading import Result, grade, parse_number
from .markup import default_order, md_to_html, plain, text_view

EXAMPLE = "a number, e.g. 1500, 1,500, 2/3 or 1.5e3"  # none of these is an answer in the bank


def feedback_html(result: Result) -> str:
    """"<b>Correct.</b> why" or "<b>Not quite.</b> why"; a verdict the feedback repeats is dropped."""
    verdict = "Correct" if result.correct else "Not quite"
    said = r"(Right|Correct)[.:!]\s+" if result.correct else r"(Not quite|Wrong|Incorrect|No)[.:!]\s+"
    text = re.sub(f"^{said}", "", result.feedback, flags=re.I)
    return f"<b>{verdict}.</b> {md_to_html(text[:1].upper() + text[1:])}"


def close_tree(widget) -> None:
    """Close a widget, its children and its layout/style models, so the frontend drops them all."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    for part in ("layout", "style"):
        sub = getattr(widget, part, None)
        if sub is not None and hasattr(sub, "close"):
            sub.close()
    widget.close()


class QuestionCard:
    """One question's widgets. ``choice`` is the input: RadioButtons, a VBox of Checkboxes, or a Text box.

    ``order`` lists the indices into ``question["answers"]`` in the order shown, and ``options`` the
    answers themselves in that order.
    """

    notebook: str | None = None  # the quiz to save first tries under (lora_mini.progress); None: not saved

    def __init__(self, question: dict, number: int, order: Sequence[int], on_change) -> None:
        import ipywidgets as W

        self.question, self.order = question, list(order)
        self.options = [question["answers"][j] for j in self.order]
        self.first_try: bool | None = None  # set by the first Check that has an answer
        self.checked = False
        self.on_change = on_change
        qtype = question["type"]
        self.text = W.HTMLMath(value=f"<b>{number}.</b> {md_to_html(question['question'])}")
        self.text.add_class("lora-quiz-question")
        self.checkboxes: list = []
        if qtype == "multiple_choice":
            self.choice = W.RadioButtons(options=[(plain(a["answer"]), j) for a, j in zip(self.options, self.order)],
                                         value=None, layout=W.Layout(width="auto"))
        elif qtype == "many_choice":
            self.checkboxes = [W.Checkbox(value=False, description=plain(a["answer"]), indent=False,
                                          layout=W.Layout(width="auto")) for a in self.options]
            self.choice = W.VBox(self.checkboxes)
        else:
            self.choice = W.Text(value="", placeholder=EXAMPLE, description="Answer:")
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
            return [j for j, box in zip(self.order, self.checkboxes) if box.value] or None
        return parse_number(self.choice.value)

    def set_inputs_disabled(self, disabled: bool) -> None:
        for w in self.checkboxes or [self.choice]:
            w.disabled = disabled

    def check(self) -> Result | None:
        """What the Check button does: grade, show feedback, lock the answer until Try again."""
        response = self.response()
        if response is None:
            ask = {"multiple_choice": "Choose an option first.", "many_choice": "Tick at least one option first.",
                   "numeric": f"Type a number first ({EXAMPLE})."}
            self.feedback.value = ask[self.question["type"]]
            return None
        result = grade(self.question, response)
        self.feedback.value = feedback_html(result)
        self.feedback.remove_class("lora-quiz-correct" if not result.correct else "lora-quiz-wrong")
        self.feedback.add_class("lora-quiz-correct" if result.correct else "lora-quiz-wrong")
        if self.first_try is None:
            self.first_try = result.correct
            if self.notebook:  # kept across restarts for the review; never required
                record_first_try(self.notebook, self.question, result.correct)
        self.checked = True
        self.set_inputs_disabled(True)
        self.check_button.disabled, self.retry_button.disabled = True, False
        self.on_change()
        return result

    def show_hint(self) -> None:
        self.hint.value = f"<b>Hint:</b> {md_to_html(self.question['hint'])}"

    def reset(self) -> None:
        """What Try again does: clear the answer and the feedback (the first-try score stays)."""
        if self.question["type"] == "multiple_choice":
            self.choice.value = None
        elif self.question["type"] == "many_choice":
            for box in self.checkboxes:
                box.value = False
        else:
            self.choice.value = ""
        self.set_inputs_disabled(False)
        self.feedback.value = ""
        self.feedback.remove_class("lora-quiz-correct")
        self.feedback.remove_class("lora-quiz-wrong")
        self.check_button.disabled, self.retry_button.disabled = False, True
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
            raise LoraValueError("these questions cannot be shown:\n  " + "\n  ".join(problems))
        self.questions = copy.deepcopy(list(questions))
        self.title = title
        rng = random.Random(seed)
        self.cards: list[QuestionCard] = []
        for n, q in enumerate(self.questions, start=1):
            order = default_order(q)
            if shuffle:
                rng.shuffle(order)
            self.cards.append(QuestionCard(q, n, order, self.update_score))
            self.cards[-1].notebook = notebook  # first tries saved under this name (show_quiz passes it)
        self.score_label = W.HTML(value="")
        self.score_label.add_class("lora-quiz-score")
        self.update_score()
        heading = W.HTML(value=f"{CSS}<b>Quiz: {html.escape(title)}</b> (Check as often as you like; the score "
                               f"counts answers right on the first Check.)")
        self.widget = W.VBox([heading, *[c.widget for c in self.cards], self.score_label])
        self.widget.add_class("lora-quiz")

    @property
    def score(self) -> int:
        """Questions whose first Check was right."""
        return sum(card.first_try is True for card in self.cards)

    def update_score(self) -> None:
        self.score_label.value = f"{self.score} / {len(self.cards)} correct on first try"

    def text(self) -> str:
        """The quiz as readable text in the order shown, without answers or feedback."""
        return text_view(self.questions, [c.order for c in self.cards], self.title)

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

    path = resolve_quiz(name_or_path)
    display(Quiz(load_questions(path), shuffle=shuffle, seed=seed, title=quiz_title(path.stem), notebook=path.stem))
