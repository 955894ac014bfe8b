"""The quiz bank (lora_mini/quizzes/*.json) and the quiz widget (lora_mini/quiz.py).

- every file follows jupyterquiz's schema and the course's rules (hint, feedback per option, ...);
- every numeric answer tied to the course is recomputed from lora_mini (its "check");
- every file renders with jupyterquiz.display_quiz (jupyterquiz is a dev requirement: no skip);
- the widget is driven through its objects: Check, Hint, Try again, score, shuffle, text fallback.
"""
from __future__ import annotations

import json
import re

import pytest

import lora_mini.quiz as quiz_mod
from lora_mini.quiz import (
    QUIZ_DIR,
    Quiz,
    grade,
    load_questions,
    quiz_names,
    quiz_text,
    show_quiz,
    validate_questions,
)

NOTEBOOKS = [
    "00_why_lora",
    "01_toy_transformer",
    "02_lora_from_scratch",
    "03_counting",
    "04_face_off",
    "05_choosing_settings",
    "06_inside_lora",
    "07_many_adapters",
    "08_what_lora_preserves",
    "09_lora_among_peers",
    "10_beyond_lora",
    "11_real_model",
]
BANK = {name: load_questions(name) for name in NOTEBOOKS}
ALL = [(name, i, q) for name, qs in BANK.items() for i, q in enumerate(qs)]
NUMERIC = [(name, i, q) for name, i, q in ALL if q["type"] == "numeric"]


def _round_sig(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


def _correct_index(q: dict) -> int:
    return next(j for j, a in enumerate(q["answers"]) if a["correct"])


def _wrong_index(q: dict) -> int:
    return next(j for j, a in enumerate(q["answers"]) if not a["correct"])


def _find(name: str, check: str) -> dict:
    return next(q for q in BANK[name] if q.get("check") == check)


# ---------------------------------------------------------------------------
# The bank: files, schema, course rules
# ---------------------------------------------------------------------------


def test_one_quiz_per_notebook():
    assert quiz_names() == NOTEBOOKS
    assert sorted(p.name for p in QUIZ_DIR.iterdir()) == [f"{n}.json" for n in NOTEBOOKS]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_file_is_valid(name):
    assert validate_questions(BANK[name]) == []


def _jupyterquiz_schema_problems(q: dict) -> list[str]:
    """An independent reading of jupyterquiz's schema (README and js/*.js of 2.9.6.4)."""
    problems = []
    if not isinstance(q.get("question"), str) or q.get("type") not in ("multiple_choice", "many_choice", "numeric"):
        problems.append("question / type")
    for a in q.get("answers", []):
        if q["type"] == "numeric":
            ok = (a.get("type") == "value" and isinstance(a.get("value"), (int, float)) and isinstance(a.get("correct"), bool)) \
                or (a.get("type") == "range" and len(a.get("range", [])) == 2 and isinstance(a.get("correct"), bool)) \
                or (a.get("type") == "default" and isinstance(a.get("feedback"), str))
        else:
            ok = isinstance(a.get("answer"), str) and isinstance(a.get("correct"), bool) and isinstance(a.get("feedback"), str)
        if not ok:
            problems.append(f"answer {a}")
    if "precision" in q and not (isinstance(q["precision"], int) and q["precision"] > 0):
        problems.append("precision")
    return problems


@pytest.mark.parametrize("name,i,q", ALL, ids=[f"{n}-{i + 1}" for n, i, _ in ALL])
def test_question_follows_course_rules(name, i, q):
    assert _jupyterquiz_schema_problems(q) == []
    assert q["hint"].strip()
    n_right = sum(a.get("correct") is True for a in q["answers"])
    if q["type"] == "multiple_choice":
        assert n_right == 1
    elif q["type"] == "many_choice":
        assert 2 <= n_right < len(q["answers"])  # jupyterquiz shows one right option as multiple choice
    else:
        assert n_right == 1 and q["check"] and q["answers"][-1]["type"] == "default"
    for a in q["answers"]:
        assert len(a["feedback"].strip()) >= 15, a  # an explanation, not just "Wrong"


def test_bank_size_and_mix():
    assert sum(len(qs) for qs in BANK.values()) >= 48
    for name, qs in BANK.items():
        types = [q["type"] for q in qs]
        assert len(qs) >= 6, name
        assert "many_choice" in types and "numeric" in types and "multiple_choice" in types, name


def test_no_duplicate_questions():
    seen = {}
    for name, i, q in ALL:
        key = re.sub(r"\W+", " ", q["question"]).strip().lower()
        assert key not in seen, f"{name} {i + 1} repeats {seen[key]}"
        seen[key] = (name, i + 1)


def test_first_question_of_00():
    q = BANK["00_why_lora"][0]
    assert q["question"] == "Why is LoRA particularly useful for large language models?"
    assert q["type"] == "multiple_choice"
    by_text = {a["answer"]: a for a in q["answers"]}
    for wrong in ["It retrains the model from scratch", "It drastically increases the number of trainable parameters",
                  "It removes the need for task-specific data"]:
        assert by_text[wrong]["correct"] is False and len(by_text[wrong]["feedback"]) > 40
    right = q["answers"][_correct_index(q)]["answer"].lower()
    for idea in ["frozen", "low-rank", "fewer trainable parameters", "memory", "adapters", "one base"]:
        assert idea in right


def test_validator_finds_each_kind_of_problem():
    good = BANK["02_lora_from_scratch"]
    assert validate_questions(good) == []
    mc = next(q for q in good if q["type"] == "multiple_choice")
    many = next(q for q in good if q["type"] == "many_choice")
    num = next(q for q in good if q["type"] == "numeric")

    def broken(q, change):
        q = json.loads(json.dumps(q))
        change(q)
        return validate_questions([q])

    cases = {
        "exactly one correct": broken(mc, lambda q: q["answers"][_wrong_index(q)].update(correct=True)),
        "own 'feedback'": broken(mc, lambda q: q["answers"][0].pop("feedback")),
        "'hint'": broken(mc, lambda q: q.pop("hint")),
        "at least two correct": broken(many, lambda q: [a.update(correct=False) for a in q["answers"][1:]]
                                       or q["answers"][0].update(correct=True)),
        "'check'": broken(num, lambda q: q.pop("check")),
        "'default'": broken(num, lambda q: q["answers"].pop()),
        "'<'": broken(mc, lambda q: q.update(question="Is r < d?")),
        "unbalanced $": broken(mc, lambda q: q.update(question="Is $r small?")),
        "no $math$ in options": broken(mc, lambda q: q["answers"][0].update(answer="$r$")),
        "type must be": broken(mc, lambda q: q.update(type="multiple")),
        "unknown keys": broken(mc, lambda q: q.update(hnit="typo")),
        "caught by an earlier answer": broken(num, lambda q: q["answers"].insert(
            0, {"type": "range", "range": [-1e12, 1e12], "correct": False, "feedback": "Everything is wrong."})),
    }
    for expected, problems in cases.items():
        assert any(expected in p for p in problems), (expected, problems)
    assert validate_questions([]) and validate_questions({"question": "x"})


# ---------------------------------------------------------------------------
# Numeric answers, recomputed from lora_mini
# ---------------------------------------------------------------------------


import quizchecks_00_03
import quizchecks_04_07
import quizchecks_08_12

CHECKS = {**quizchecks_00_03.CHECKS, **quizchecks_04_07.CHECKS, **quizchecks_08_12.CHECKS}


def test_every_check_is_used_once_and_defined():
    used = [q["check"] for _, _, q in NUMERIC]
    assert len(used) == len(set(used)), "two numeric questions share a check"
    assert set(used) == set(CHECKS)


@pytest.mark.parametrize("name,i,q", NUMERIC, ids=[q["check"] for _, _, q in NUMERIC])
def test_numeric_answer_matches_lora_mini(name, i, q):
    computed = CHECKS[q["check"]]()
    value = next(a["value"] for a in q["answers"] if a["type"] == "value" and a["correct"])
    precision = q.get("precision")
    if precision:
        assert _round_sig(value, precision) == _round_sig(computed, precision), (value, computed)
    else:
        assert value == computed, (value, computed)
    assert grade(q, computed).correct  # typing lora_mini's own number is graded right
    for a in q["answers"]:  # and no wrong answer is the right number
        if a["type"] == "value" and not a["correct"]:
            assert not grade(q, a["value"]).correct


# ---------------------------------------------------------------------------
# jupyterquiz renders every file (a dev requirement: if it is missing this FAILS)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_renders_with_jupyterquiz(name, monkeypatch):
    import jupyterquiz  # noqa: F401  (requirements-dev.txt pins it; an ImportError fails this test)
    import jupyterquiz.dynamic.display as jq_display

    shown = []
    monkeypatch.setattr(jq_display, "display", lambda *objs: shown.extend(objs))
    for ref in (BANK[name], str(QUIZ_DIR / f"{name}.json")):
        shown.clear()
        jupyterquiz.display_quiz(ref)
        html, script = shown[0].data, shown[1].data
        assert 'data-shuffleanswers="True"' in html
        m = re.match(r"var questions(\w+)=(.*?);\n\nif \(typeof Question === 'undefined'\)", script, re.S)
        assert m and m.group(1) in html
        assert json.loads(m.group(2)) == BANK[name]  # the questions reach the page intact
        for kind in {q["type"] for q in BANK[name]}:
            assert f"Question.register('{kind}'" in script  # a renderer exists for every type used


# ---------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------


def _core(feedback: str) -> str:
    """The end of the feedback as HTML (the widget may fold a leading "Right." into its bold verdict)."""
    return quiz_mod._md_to_html(feedback)[-40:]


def _mc(name="00_why_lora", k=0) -> dict:
    return BANK[name][k]


def _many() -> dict:
    return next(q for q in BANK["02_lora_from_scratch"] if q["type"] == "many_choice")


def test_multiple_choice_wrong_then_retry_then_right():
    q = _mc()
    quiz = Quiz([q, BANK["00_why_lora"][1]], shuffle=False)
    card = quiz.cards[0]
    assert quiz.score_label.value == "0 / 2 correct on first try"
    wrong = _wrong_index(q)
    card.choice.value = wrong
    card.check_button.click()
    assert "Not quite" in card.feedback.value and "Correct" not in card.feedback.value
    assert card.feedback.value == quiz_mod._feedback_html(grade(q, wrong))
    assert _core(q["answers"][wrong]["feedback"]) in card.feedback.value
    assert quiz.score_label.value == "0 / 2 correct on first try"
    assert card.choice.disabled and card.check_button.disabled and not card.retry_button.disabled

    card.retry_button.click()
    assert card.choice.value is None and card.feedback.value == ""
    assert not card.choice.disabled and not card.check_button.disabled and card.retry_button.disabled

    right = _correct_index(q)
    card.choice.value = right
    card.check_button.click()
    assert card.feedback.value.startswith("<b>Correct.</b>")
    assert card.feedback.value == quiz_mod._feedback_html(grade(q, right))
    assert _core(q["answers"][right]["feedback"]) in card.feedback.value
    assert quiz.score_label.value == "0 / 2 correct on first try"  # right only on the second try

    second = quiz.cards[1]
    second.choice.value = _correct_index(second.question)
    second.check_button.click()
    assert quiz.score_label.value == "1 / 2 correct on first try"
    second.retry_button.click()
    second.choice.value = _wrong_index(second.question)
    second.check_button.click()
    assert quiz.score_label.value == "1 / 2 correct on first try"  # a later miss does not take it back


def test_check_without_an_answer_is_not_an_attempt():
    quiz = Quiz([_mc()], shuffle=False)
    card = quiz.cards[0]
    card.check_button.click()
    assert "first" in card.feedback.value and card.first_try is None and not card.check_button.disabled
    card.choice.value = _correct_index(card.question)
    card.check_button.click()
    assert quiz.score_label.value == "1 / 1 correct on first try"


def test_hint_button_shows_the_hint():
    q = _mc()
    card = Quiz([q], shuffle=False).cards[0]
    assert card.hint.value == ""
    card.hint_button.click()
    assert quiz_mod._md_to_html(q["hint"]) in card.hint.value and "Hint" in card.hint.value
    assert card.first_try is None  # a hint is not an attempt


def test_many_choice_paths():
    q = _many()
    right = [j for j, a in enumerate(q["answers"]) if a["correct"]]
    wrong = [j for j, a in enumerate(q["answers"]) if not a["correct"]]
    quiz = Quiz([q], shuffle=False)
    card = quiz.cards[0]
    assert len(card.checkboxes) == len(q["answers"]) and card.choice.children == tuple(card.checkboxes)

    card.checkboxes[right[0]].value = True
    card.checkboxes[wrong[0]].value = True
    card.check_button.click()
    fb = card.feedback.value
    assert "Not quite" in fb
    assert quiz_mod._md_to_html(q["answers"][right[0]]["feedback"]) in fb
    assert quiz_mod._md_to_html(q["answers"][wrong[0]]["feedback"]) in fb
    assert quiz_mod._md_to_html(q["answers"][right[1]]["feedback"]) not in fb  # unticked: not revealed
    assert all(box.disabled for box in card.checkboxes)
    assert quiz.score_label.value == "0 / 1 correct on first try"

    card.retry_button.click()
    assert not any(box.value or box.disabled for box in card.checkboxes)
    card.checkboxes[right[0]].value = True
    card.check_button.click()
    assert "Not quite" in card.feedback.value and "also appl" in card.feedback.value  # some right ones missing

    card.retry_button.click()
    for j in right:
        card.checkboxes[j].value = True
    card.check_button.click()
    assert card.feedback.value.startswith("<b>Correct.</b>")


def test_numeric_paths():
    q = _find("03_counting", "trainable_qv_r4")
    quiz = Quiz([q], shuffle=False)
    card = quiz.cards[0]
    card.choice.value = "not a number"
    card.check_button.click()
    assert "Type a number" in card.feedback.value and card.first_try is None
    examples = [quiz_mod.parse_number(x) for x in re.findall(r"[\d.,/e]+\d", card.choice.placeholder)]
    assert examples == [1500, 1500, 2 / 3, 1500]
    for _, _, other in NUMERIC:  # the placeholder never suggests an answer
        assert not any(grade(other, x).correct for x in examples)

    card.choice.value = "1536"
    card.check_button.click()
    fb_1536 = next(a["feedback"] for a in q["answers"] if a.get("value") == 1536)
    assert "Not quite" in card.feedback.value and _core(fb_1536) in card.feedback.value

    card.retry_button.click()
    assert card.choice.value == "" and not card.choice.disabled
    card.choice.value = "12345"
    card.check_button.click()
    assert _core(q["answers"][-1]["feedback"]) in card.feedback.value  # the default
    assert card.feedback.value.count("Not quite") == 1  # the default's own "Not quite." is not repeated

    card.retry_button.click()
    card.choice.value = " 3,072 "
    card.check_button.click()
    assert card.feedback.value.startswith("<b>Correct.</b>")
    assert quiz.score_label.value == "0 / 1 correct on first try"

    pct = Quiz([_find("03_counting", "trainable_percent_qv_r4")], shuffle=False).cards[0]
    pct.choice.value = "1.32%"
    pct.check_button.click()
    assert pct.feedback.value.startswith("<b>Correct.</b>")  # precision: 3 significant digits


def test_numeric_grading_follows_jupyterquiz():
    q = {"question": "x", "type": "numeric", "precision": 2, "hint": "h", "check": "c", "answers": [
        {"type": "value", "value": 3.14159, "correct": True, "feedback": "pi"},
        {"type": "range", "range": [3, 3.1], "correct": False, "feedback": "close"},
        {"type": "default", "feedback": "no"}]}
    assert grade(q, 3.1).correct and grade(q, 3.149).feedback == "pi"  # both round to 3.1
    assert grade(q, 3.04).feedback == "close" and not grade(q, 3.04).correct  # ranges are [lo, hi)
    assert grade(q, 2.9) == quiz_mod.Result(False, "no")
    assert quiz_mod.parse_number("1/4") == 0.25 and quiz_mod.parse_number("2e3") == 2000
    assert quiz_mod.parse_number("") is None and quiz_mod.parse_number("1/0") is None


def test_shuffle_is_seeded_and_can_be_switched_off():
    questions = BANK["02_lora_from_scratch"] + BANK["06_inside_lora"]
    orders = lambda quiz: [card.order for card in quiz.cards]  # noqa: E731
    plain = Quiz(questions, shuffle=False)
    assert orders(plain) == [list(range(len(q["answers"]))) if q["type"] != "numeric" else [] for q in questions]
    seven = orders(Quiz(questions, seed=7))
    assert seven == orders(Quiz(questions, seed=7))
    assert seven != orders(Quiz(questions, seed=8)) and seven != orders(plain)
    quiz = Quiz([q for _, _, q in ALL], seed=3)  # every question of the bank, shuffled
    for card in quiz.cards:
        assert sorted(card.order) == sorted(range(len(card.options))) if card.order else True
        if card.question["type"] == "multiple_choice":  # each label still maps to its own answer
            for label, j in card.choice.options:
                assert label == quiz_mod._plain(card.question["answers"][j]["answer"])
            card.choice.value = _correct_index(card.question)
            card.check_button.click()
            assert card.feedback.value.startswith("<b>Correct.</b>")
        if card.question["type"] == "many_choice":
            labels = [box.description for box in card.checkboxes]
            assert labels == [quiz_mod._plain(card.question["answers"][j]["answer"]) for j in card.order]


def test_widgets_carry_css_classes():
    quiz = Quiz([_mc(), _many(), _find("03_counting", "trainable_qv_r4")], shuffle=False)
    assert "lora-quiz" in quiz.widget._dom_classes and "lora-quiz-score" in quiz.score_label._dom_classes
    for card in quiz.cards:
        assert "lora-quiz-card" in card.widget._dom_classes
        assert "lora-quiz-check" in card.check_button._dom_classes
        assert "lora-quiz-hint-button" in card.hint_button._dom_classes
        assert "lora-quiz-retry" in card.retry_button._dom_classes
        assert "lora-quiz-feedback" in card.feedback._dom_classes
        assert card.widget in quiz.widget.children
    card = quiz.cards[0]
    card.choice.value = _wrong_index(card.question)
    card.check_button.click()
    assert "lora-quiz-wrong" in card.feedback._dom_classes
    card.retry_button.click()
    card.choice.value = _correct_index(card.question)
    card.check_button.click()
    assert "lora-quiz-correct" in card.feedback._dom_classes and "lora-quiz-wrong" not in card.feedback._dom_classes


def test_markdown_lite():
    html = quiz_mod._md_to_html("**bold** and `a<b` and $x < y$ and *it*")
    assert html == "<b>bold</b> and <code>a&lt;b</code> and $x &lt; y$ and <i>it</i>"
    assert quiz_mod._md_to_html("$a*b*c$") == "$a*b*c$"  # math is left to MathJax
    assert quiz_mod._plain("`lora_A` is **trained**") == "lora_A is trained"
    verdict = quiz_mod._feedback_html
    assert verdict(quiz_mod.Result(True, "Right. Because `B` is zero.")) == "<b>Correct.</b> Because <code>B</code> is zero."
    assert verdict(quiz_mod.Result(False, "No: it is frozen.")) == "<b>Not quite.</b> It is frozen."
    assert verdict(quiz_mod.Result(False, "Right idea, wrong sign.")) == "<b>Not quite.</b> Right idea, wrong sign."


# ---------------------------------------------------------------------------
# Without a widget frontend: readable text, no answers
# ---------------------------------------------------------------------------


def _assert_reveals_nothing(text: str, questions: list[dict]) -> None:
    """Take out the title, every question and every option: only numbering and markup may remain."""
    for q in questions:
        for a in q["answers"]:
            assert a["feedback"] not in text
        assert q["hint"] not in text
    title, _, rest = text.partition("\n")
    assert title.startswith("**Quiz: ") and "correct" not in title.lower()
    for q in sorted(questions, key=lambda q: -len(q["question"])):
        rest = rest.replace(q["question"], "", 1)
    labels = [quiz_mod._plain(a["answer"]) for q in questions for a in q["answers"] if "answer" in a]
    for label in sorted(labels, key=len, reverse=True):
        rest = rest.replace(f") {label}\n", ")\n", 1)
    structure = re.compile(r"(\d+\.  \*\((choose one|choose all that apply|type a number)\)\*|    - [a-h]\)|)")
    leftovers = [line for line in rest.split("\n") if not structure.fullmatch(line)]
    assert leftovers == []  # no "correct", no ticks, no feedback: nothing but the quiz itself


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_text_fallback_is_readable_and_reveals_nothing(name):
    questions = BANK[name]
    text = quiz_text(name)
    for q in questions:
        assert q["question"] in text
        for a in q.get("answers", []):
            if "answer" in a:
                assert quiz_mod._plain(a["answer"]) in text
    _assert_reveals_nothing(text, questions)


def test_quiz_displays_as_widget_with_a_safe_text_fallback(capsys):
    questions = BANK["03_counting"]
    quiz = Quiz(questions, seed=0)
    bundle = quiz._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == quiz.widget.model_id
    assert bundle["text/plain"] == bundle["text/markdown"] == quiz.text() == repr(quiz)
    first_mc = next(c for c in quiz.cards if c.question["type"] == "multiple_choice")
    lines = [f"{ch}) {quiz_mod._plain(a['answer'])}" for ch, a in zip("abcdefgh", first_mc.options)]
    assert all(line in bundle["text/plain"] for line in lines)  # options in the order shown
    _assert_reveals_nothing(bundle["text/plain"], questions)

    show_quiz("03_counting", seed=0)  # no IPython kernel here: display() prints the text
    out = capsys.readouterr().out
    assert questions[0]["question"] in out and "Quiz: 03" in out
    _assert_reveals_nothing(out, questions)


def test_names_and_paths():
    assert load_questions("02") == load_questions("02_lora_from_scratch.json") == BANK["02_lora_from_scratch"]
    assert load_questions(QUIZ_DIR / "06_inside_lora.json") == BANK["06_inside_lora"]
    loaded = load_questions("07_many_adapters")
    loaded[0]["question"] = "changed"
    assert BANK["07_many_adapters"][0]["question"] != "changed"  # a fresh copy every time
    with pytest.raises(ValueError, match="00_why_lora"):
        load_questions("99_nothing")
    with pytest.raises(ValueError, match="cannot be shown"):
        Quiz([{"question": "x", "type": "multiple_choice", "answers": []}])


def test_review_holds_every_question_with_a_score_per_notebook():
    from lora_mini import Review

    review = Review(seed=3)
    assert len(review.questions) == sum(len(qs) for qs in BANK.values())
    assert sorted(review.topics) != review.topics  # shuffled across notebooks
    assert Review(seed=3).topics == review.topics  # repeatably
    i = next(k for k, q in enumerate(review.questions) if q["type"] == "multiple_choice")
    card, topic = review.go(i), review.topics[i]
    card.choice.value = _correct_index(card.question)
    card.check_button.click()
    j = next(k for k, q in enumerate(review.questions) if q["type"] == "multiple_choice" and review.topics[k] != topic)
    other, other_topic = review.go(j), review.topics[j]
    other.choice.value = _wrong_index(other.question)
    other.check_button.click()
    scores = review.topic_scores()
    assert scores[topic][:2] == (1, 1) and scores[other_topic][:2] == (0, 1)
    assert scores[topic][2] == len(BANK[topic])
    assert f"href='{topic}.ipynb'" in review.topic_table.value and "1 / 1 checked" in review.topic_table.value
    assert review.topic_table in review.widget.children
    assert review.score_label.value.startswith("1 / ")


def test_review_shows_one_question_at_a_time_and_remembers_first_tries():
    from ipywidgets.widgets.widget import _instances

    from lora_mini import Review

    review = Review(seed=0)
    assert review.holder.children == (review.card.widget,) and review.prev_button.disabled
    i = next(k for k, q in enumerate(review.questions) if q["type"] == "multiple_choice")
    review.go(i).choice.value = _wrong_index(review.questions[i])
    review.card.check_button.click()
    review.next_button.click()
    assert review.index == i + 1 and f"question {i + 2} of" in review.position.value
    review.prev_button.click()  # back: a new card, the first try remembered; a right retry does not count
    assert review.card.first_try is False
    review.card.choice.value = _correct_index(review.questions[i])
    review.card.check_button.click()
    assert review.first_try[i] is False and review.score == 0
    live = []
    for k in range(len(review.questions)):  # widget models stay bounded however far the learner walks
        review.go(k)
        live.append(len(_instances))
    assert max(live) - min(live) < 25
    last = review.topics[-1]
    review.jump.value = last  # the selector jumps to that notebook's first question, then resets
    assert review.index == review.topics.index(last) and review.jump.value == ""
    assert review.go(10**6) is review.card and review.index == len(review.questions) - 1  # clamped
    assert review.next_button.disabled

