"""Quiz progress across restarts (lora_mini.progress): first tries saved to a small JSON file, read back by
the review, cleared in one call, and never required (unwritable, corrupt or switched off: no error)."""
import json
from pathlib import Path

import pytest

from lora_mini import progress
from lora_mini.progress import clear_progress, load_progress, progress_path, question_id, record_first_try, summary
from lora_mini.quiz import Quiz, load_questions

QUESTIONS = load_questions("03_counting")


@pytest.fixture(autouse=True)
def progress_file(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "progress.json"
    monkeypatch.setenv(progress.ENV, str(path))
    return path


def _choose(card, right: bool) -> None:
    """Pick a right or a wrong option of a multiple-choice card."""
    card.choice.value = next(j for j, a in zip(card.order, card.options) if a["correct"] is right)


def test_default_file_is_in_the_home_folder_and_written_only_from_a_kernel(monkeypatch, tmp_path):
    monkeypatch.delenv(progress.ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    default = tmp_path / "home" / ".lora-mini" / "progress.json"
    assert progress_path() == default
    assert not progress.saving()  # a script or a test that clicks a quiz leaves the home folder alone
    assert record_first_try("03_counting", QUESTIONS[0], True) is False and not default.exists()
    monkeypatch.setattr(progress, "_in_kernel", lambda: True)  # a learner's notebook
    assert progress.saving() and record_first_try("03_counting", QUESTIONS[0], True)
    assert default.exists() and summary()["03_counting"][:2] == (1, 1)
    assert clear_progress() == default and not default.exists()


def test_first_tries_survive_a_restart_and_a_later_visit_replaces_them(progress_file):
    assert record_first_try("03_counting", QUESTIONS[0], True)
    assert record_first_try("03_counting", QUESTIONS[1], False)
    assert record_first_try("02_lora_from_scratch", load_questions("02_lora_from_scratch")[0], True)
    on_disk = json.loads(progress_file.read_text())  # what a new kernel reads
    assert on_disk["version"] == progress.VERSION
    assert on_disk["notebooks"]["03_counting"][question_id(QUESTIONS[1])]["right"] is False
    assert summary()["03_counting"][:2] == (1, 2)
    record_first_try("03_counting", QUESTIONS[1], True)  # a later visit's first try
    assert summary()["03_counting"][:2] == (2, 2)
    assert set(load_progress()) == {"03_counting", "02_lora_from_scratch"}


def test_question_id_ignores_the_shuffle_and_tells_questions_apart():
    q = QUESTIONS[0]
    shuffled = dict(q, answers=list(reversed(q["answers"])))
    assert question_id(shuffled) == question_id(q)
    assert len({question_id(x) for x in QUESTIONS}) == len(QUESTIONS)


def test_summary_counts_only_questions_still_in_the_quiz():
    record_first_try("03_counting", QUESTIONS[0], True)
    record_first_try("03_counting", {"question": "a question since edited away"}, False)
    assert summary()["03_counting"][:2] == (1, 2)
    assert summary({"03_counting": QUESTIONS})["03_counting"][:2] == (1, 1)
    assert "03_counting" not in summary({"03_counting": QUESTIONS[1:]})


def test_clearing_is_one_call(progress_file):
    record_first_try("03_counting", QUESTIONS[0], True)
    assert progress_file.exists()
    assert clear_progress() == progress_file
    assert not progress_file.exists() and load_progress() == {}
    assert clear_progress() == progress_file  # clearing nothing is fine too


def test_never_required_switched_off_unwritable_or_corrupt(progress_file, monkeypatch, tmp_path):
    monkeypatch.setenv(progress.ENV, "off")
    assert progress_path() is None
    assert record_first_try("03_counting", QUESTIONS[0], True) is False
    assert load_progress() == {} and clear_progress() is None
    assert not progress_file.exists()

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(progress.ENV, str(blocker / "progress.json"))  # its folder cannot be made
    assert record_first_try("03_counting", QUESTIONS[0], True) is False
    assert load_progress() == {}

    monkeypatch.setenv(progress.ENV, str(progress_file))
    progress_file.write_text("{not json")
    assert load_progress() == {}
    assert record_first_try("03_counting", QUESTIONS[0], True)  # a corrupt file is replaced
    assert summary()["03_counting"][:2] == (1, 1)


def test_a_quiz_saves_only_the_first_check_of_each_question(progress_file):
    quiz = Quiz(QUESTIONS, seed=0, notebook="03_counting")
    card = next(c for c in quiz.cards if c.question["type"] == "multiple_choice")
    _choose(card, right=False)
    card.check()
    card.reset()
    _choose(card, right=True)
    card.check()
    saved = load_progress()["03_counting"]
    assert saved == {question_id(card.question): {"right": False, "when": saved[question_id(card.question)]["when"]}}


def test_a_quiz_without_a_notebook_name_saves_nothing(progress_file):
    card = next(c for c in Quiz(QUESTIONS, seed=0).cards if c.question["type"] == "multiple_choice")
    _choose(card, right=True)
    card.check()
    assert not progress_file.exists()


def test_show_quiz_saves_under_the_notebook_name(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    from lora_mini.quiz import show_quiz

    show_quiz("03", seed=0)
    card = next(c for c in shown[0].cards if c.question["type"] == "multiple_choice")
    _choose(card, right=True)
    card.check()
    assert summary()["03_counting"][:2] == (1, 1)


def test_the_review_shows_earlier_visits_and_saves_under_each_questions_notebook():
    from lora_mini.quiz import Review

    for q, right in zip(QUESTIONS[:3], (True, True, False)):
        record_first_try("03_counting", q, right)
    review = Review(seed=0)
    rows = review.topic_table.value.split("<tr>")
    row_03 = next(r for r in rows if ">03_counting<" in r)
    assert "earlier visits: 2 / 3 right on first try" in row_03
    row_other = next(r for r in rows if ">02_lora_from_scratch<" in r)
    assert "earlier visits: none saved" in row_other

    card = review.card
    if card.question["type"] != "multiple_choice":
        card = review.go(next(i for i, q in enumerate(review.questions) if q["type"] == "multiple_choice"))
    _choose(card, right=True)
    card.check()
    topic = review.topics[review.index]
    assert load_progress()[topic][question_id(card.question)]["right"] is True


@pytest.mark.browser
def test_in_jupyterlab_a_first_try_survives_the_kernel_and_the_review_shows_it(chromium, tmp_path):
    """End to end: a quiz answered in one notebook's kernel, that kernel shut down, the review opened in a
    new kernel: its table shows the earlier visit. (Lab points LORA_MINI_PROGRESS at its own folder.)"""
    import nbformat

    from labdriver import Lab, open_and_run_all

    for name, source in [("quiz", 'from lora_mini import show_quiz\nshow_quiz("03_counting", seed=0)'),
                         ("review", "from lora_mini import show_review\nshow_review(seed=0)")]:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    shown = Quiz(QUESTIONS, seed=0)  # the quiz as show_quiz("03_counting", seed=0) shows it
    n, card = next((i, c) for i, c in enumerate(shown.cards) if c.question["type"] == "multiple_choice")
    right = next(k for k, a in enumerate(card.options) if a["correct"])
    with Lab(tmp_path) as lab:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        try:
            open_and_run_all(page, lab, "quiz.ipynb")
            page.wait_for_selector(".lora-quiz .widget-radio-box", state="attached", timeout=30_000)
            box = page.locator(".lora-quiz-card").nth(n)
            box.scroll_into_view_if_needed()
            box.locator(".widget-radio-box label").nth(right).click()
            box.locator(".lora-quiz-check").click()
            feedback = box.locator(".lora-quiz-feedback")
            page.wait_for_function("el => el.innerText.includes('Correct')", arg=feedback.element_handle(),
                                   timeout=20_000)
            saved = lab.workdir / "progress.json"
            assert _wait_for(saved.exists), "the first try was not saved"
            lab.shut_down_kernels()  # the restart: the review runs in a new kernel
            entries = json.loads(saved.read_text())["notebooks"]["03_counting"]
            asked = question_id(card.question)
            assert list(entries) == [asked] and entries[asked]["right"] is True
            open_and_run_all(page, lab, "review.ipynb")
            page.wait_for_function("() => [...document.querySelectorAll('.lora-quiz-topics')].some(e => "
                                   "e.innerText.includes('earlier visits: 1 / 1 right on first try'))", timeout=30_000)
            row = page.locator(".lora-quiz-topics tr", has_text="03_counting").inner_text()
            assert "earlier visits: 1 / 1 right on first try" in row
            assert page.locator(".lora-quiz-topics tr", has_text="earlier visits: none saved").count() >= 1
        finally:
            page.close()


def _wait_for(condition, seconds: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False
