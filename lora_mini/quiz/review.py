"""The review (notebook 12): FIRST an exam of integrative questions (``12_review.json``, shuffled), THEN
practice by notebook drawn from the bank; ONE question on screen at a time.

Previous / Next walk through the questions and a selector jumps to the exam or to a notebook's practice.
Only the question on screen has widgets (about 25 widget models in all, whatever the bank's size): a page
holding every question at once made thousands, which JupyterLab did not always render. The exam's score is
shown on its own; practice keeps a first-try score per notebook, with a link back to each notebook.
"""
from __future__ import annotations

import html
import random
from pathlib import Path

from ..progress import summary
from .bank import QUIZ_DIR, REVIEW_QUIZ, load_questions, quiz_names, quiz_title
from .css import CSS
from .markup import default_order, text_view
from .widget import QuestionCard, close_tree


class Review:
    """The exam (shuffled), then practice notebook by notebook (each notebook's questions shuffled).

    ``questions[i]`` comes from the quiz ``topics[i]`` (``"12_review"`` for the exam's), shown with its
    options in ``orders[i]``; ``first_try[i]`` remembers question i's first Check across visits to it.
    ``quiz_dir`` is the folder of quiz files (the shipped one unless a test passes its own).
    """

    def __init__(self, seed: int | None = None, notebook_dir: str = "", quiz_dir: str | Path = QUIZ_DIR) -> None:
        import ipywidgets as W

        bank = {name: load_questions(Path(quiz_dir) / f"{name}.json") for name in quiz_names(quiz_dir)}
        rng = random.Random(seed)
        exam = [(REVIEW_QUIZ, q) for q in bank.get(REVIEW_QUIZ, [])]
        rng.shuffle(exam)
        items = list(exam)
        for name in sorted(bank.keys() - {REVIEW_QUIZ}):
            block = [(name, q) for q in bank[name]]
            rng.shuffle(block)
            items += block
        self.exam_size = len(exam)
        self.topics = [name for name, _ in items]
        self.questions = [q for _, q in items]
        self.orders = []  # each question's options, shuffled
        for q in self.questions:
            order = default_order(q)
            rng.shuffle(order)
            self.orders.append(order)
        self.first_try: list[bool | None] = [None] * len(self.questions)
        self.earlier = summary(bank)  # earlier visits' first tries, as saved when this review opened
        self.notebook_dir = notebook_dir
        self.index, self.card = 0, None
        self.prev_button = W.Button(description="◀ Previous", tooltip="The previous question")
        self.next_button = W.Button(description="Next ▶", tooltip="The next question")
        self.position = W.HTML(value="")
        parts = list(dict.fromkeys(self.topics))
        self.jump = W.Dropdown(options=[("jump to…", "")] + [(self.part_name(n), n) for n in parts], value="")
        self.prev_button.on_click(lambda _: self.go(self.index - 1))
        self.next_button.on_click(lambda _: self.go(self.index + 1))
        self.jump.observe(self.on_jump, names="value")
        for w, cls in [(self.prev_button, "prev"), (self.next_button, "next"), (self.jump, "jump")]:
            w.add_class(f"lora-review-{cls}")
        self.holder = W.VBox([])
        self.score_label = W.HTML(value="")
        self.score_label.add_class("lora-quiz-score")
        self.topic_table = W.HTML(value="")
        self.topic_table.add_class("lora-quiz-topics")
        heading = W.HTML(value=f"{CSS}<b>Review: first the exam ({self.exam_size} questions that combine "
                               f"notebooks), then practice by notebook ({len(self.questions) - self.exam_size} "
                               f"questions).</b> One at a time; the scores count answers right on the first Check.")
        nav = W.HBox([self.prev_button, self.position, self.next_button, self.jump])
        self.widget = W.VBox([heading, nav, self.holder, self.score_label, self.topic_table])
        self.widget.add_class("lora-quiz")
        self.go(0)

    @staticmethod
    def part_name(name: str) -> str:
        return "the exam" if name == REVIEW_QUIZ else f"practice: {quiz_title(name)}"

    def go(self, i: int) -> QuestionCard:
        """Show question i (0-based, clamped to the bank) in place of the one on screen; returns its card."""
        i = max(0, min(int(i), len(self.questions) - 1))
        if self.card is not None:
            close_tree(self.card.widget)
        self.index = i
        self.card = QuestionCard(self.questions[i], i + 1, self.orders[i], self.record)
        self.card.first_try = self.first_try[i]
        self.card.notebook = self.topics[i]  # a first try here is saved under the question's own quiz
        self.holder.children = (self.card.widget,)
        self.position.value = (f"question {i + 1} of {len(self.questions)} · "
                               f"<i>{html.escape(self.part_name(self.topics[i]))}</i>")
        self.prev_button.disabled = i == 0
        self.next_button.disabled = i == len(self.questions) - 1
        self.update_scores()
        return self.card

    def on_jump(self, change) -> None:
        if change["new"]:
            self.go(self.topics.index(change["new"]))
            self.jump.value = ""

    def record(self) -> None:
        self.first_try[self.index] = self.card.first_try
        self.update_scores()

    @property
    def score(self) -> int:
        """Questions, exam and practice, whose first Check was right."""
        return sum(t is True for t in self.first_try)

    def scores(self) -> dict[str, tuple[int, int, int]]:
        """{quiz: (right on first try, checked, questions)}, the exam ("12_review") included."""
        out = {name: [0, 0, 0] for name in dict.fromkeys(self.topics)}
        for name, first in zip(self.topics, self.first_try):
            out[name][0] += first is True
            out[name][1] += first is not None
            out[name][2] += 1
        return {name: (a, b, c) for name, (a, b, c) in out.items()}

    def topic_scores(self) -> dict[str, tuple[int, int, int]]:
        """{notebook: (right on first try, checked, questions)} for practice; the exam is scored apart."""
        return {name: s for name, s in self.scores().items() if name != REVIEW_QUIZ}

    def update_scores(self) -> None:
        right, _, total = self.scores().get(REVIEW_QUIZ, (0, 0, 0))
        self.score_label.value = f"Exam: {right} / {total} correct on first try ({self.earlier_visits(REVIEW_QUIZ)})"
        rows = "".join(
            f"<tr><td><a href='{self.notebook_dir}{name}.ipynb' target='_blank'>{html.escape(name)}</a></td>"
            f"<td>{right} / {checked} checked</td><td>{total} questions</td><td>{self.earlier_visits(name)}</td></tr>"
            for name, (right, checked, total) in self.topic_scores().items()
        )
        self.topic_table.value = (f"<b>Practice: score per notebook</b> (right on first try; the link opens the "
                                  f"notebook)<table>{rows}</table><i>Earlier visits: first tries saved by the quizzes "
                                  "(lora_mini.progress); <code>clear_progress()</code> forgets them.</i>")

    def earlier_visits(self, name: str) -> str:
        if name not in self.earlier:
            return "earlier visits: none saved"
        right, tried, when = self.earlier[name]
        return f"earlier visits: {right} / {tried} right on first try (latest {when})"

    def text(self) -> str:
        """Every question as readable text in the order shown, without answers or feedback."""
        n = self.exam_size
        exam = text_view(self.questions[:n], self.orders[:n], "review, part 1: the exam") if n else ""
        practice = text_view(self.questions[n:], self.orders[n:], "review, part 2: practice by notebook", start=n + 1)
        return exam + ("\n" if exam else "") + practice

    def __repr__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = self.widget._repr_mimebundle_() or {}
        return {**bundle, "text/plain": self.text(), "text/markdown": self.text()}


def show_review(seed: int | None = None) -> None:
    """Show the review (12_review.ipynb): the exam, then practice by notebook, one question at a time."""
    from IPython.display import display

    display(Review(seed=seed))
