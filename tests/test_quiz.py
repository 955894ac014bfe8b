"""The quiz bank (lora_mini/quizzes/*.json) and the quiz code (lora_mini/quiz/).

- every file follows jupyterquiz's schema and the course's rules (hint, feedback per option, ...);
- the bank's rules for questions (issue 14), measured: kind, section, decision and recall shares, length
  cue, hints; each rule is also fed a broken question, to show that it can fail;
- every numeric answer tied to the course is recomputed from lora_mini (its "check");
- every file renders with jupyterquiz.display_quiz (jupyterquiz is a dev requirement: no skip);
- the widget and the review are driven through their objects: Check, Hint, Try again, score, shuffle,
  Previous / Next / jump, the text fallback.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from lora_mini.quiz import (
    QUIZ_DIR,
    REVIEW_QUIZ,
    TITLES,
    Quiz,
    Result,
    Review,
    grade,
    load_questions,
    parse_number,
    quiz_names,
    quiz_text,
    show_quiz,
    validate_questions,
)
from lora_mini.quiz import rules
from lora_mini.quiz.markup import md_to_html, plain
from lora_mini.quiz.widget import feedback_html

ROOT = Path(__file__).resolve().parent.parent
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
QUIZZES = NOTEBOOKS + [REVIEW_QUIZ]  # one quiz per lesson notebook, and the review's exam
BANK = {name: load_questions(name) for name in quiz_names()}
ALL = [(name, i, q) for name, qs in BANK.items() for i, q in enumerate(qs)]
NUMERIC = [(name, i, q) for name, i, q in ALL if q["type"] == "numeric"]
SECTIONS = rules.notebook_sections(ROOT / "notebooks")


def _round_sig(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


def _correct_index(q: dict) -> int:
    return next(j for j, a in enumerate(q["answers"]) if a["correct"])


def _wrong_index(q: dict) -> int:
    return next(j for j, a in enumerate(q["answers"]) if not a["correct"])


def _copy(q: dict) -> dict:
    return json.loads(json.dumps(q))


# ---------------------------------------------------------------------------
# The bank: files, schema, course rules
# ---------------------------------------------------------------------------


def test_one_quiz_per_notebook():
    assert quiz_names() == QUIZZES
    assert sorted(p.name for p in QUIZ_DIR.iterdir()) == [f"{n}.json" for n in QUIZZES]
    lessons = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert lessons == QUIZZES  # 12_review.json is the review notebook's own exam
    assert set(TITLES) == set(QUIZZES) and all(TITLES[n].startswith(n[:2] + " ") for n in QUIZZES)


@pytest.mark.parametrize("name", QUIZZES)
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
    assert sum(len(BANK[n]) for n in NOTEBOOKS) >= 48
    for name in NOTEBOOKS:
        types = [q["type"] for q in BANK[name]]
        assert len(types) >= 6, name
        assert "many_choice" in types and "numeric" in types and "multiple_choice" in types, name
    assert len(BANK[REVIEW_QUIZ]) >= 2  # the review's exam; it needs no numeric question


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
    right = q["answers"][_correct_index(q)]
    for idea in ["frozen", "low-rank", "fewer trainable parameters", "memory", "adapters", "one base"]:
        assert idea in right["answer"].lower()
    feedback = right["feedback"]  # issue 14: what LoRA keeps, and where "forgets less" and "overfits less" come from
    for said in ["overwritten", "off", "Biderman", "LoRA Learns Less and Forgets Less", "forgets less",
                 "overfits less", "scarce", "Hu et al.", "notebook 08"]:
        assert said.lower() in feedback.lower(), said


# ---------------------------------------------------------------------------
# The bank's rules for questions (issue 14), measured
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", QUIZZES)
def test_every_question_has_a_kind(name):
    assert [f"Q{i + 1}: {p}" for i, q in enumerate(BANK[name]) for p in rules.kind_problems(q)] == []


@pytest.mark.parametrize("name", QUIZZES)
def test_every_question_names_a_section_it_may_ask(name):
    """The section exists (a "## k." heading of notebook NN) and is no later than the quiz's notebook."""
    assert [f"Q{i + 1}: {p}" for i, q in enumerate(BANK[name]) for p in rules.section_problems(name, q, SECTIONS)] == []


@pytest.mark.parametrize("name", QUIZZES)
def test_no_hint_restates_the_answer(name):
    assert [f"Q{i + 1}: {p}" for i, q in enumerate(BANK[name]) for p in rules.hint_problems(q)] == []


def _total() -> dict[str, int]:
    missing = [n for n in QUIZZES if n not in BANK]
    assert not missing, f"missing quiz files: {missing}"
    return rules.counts([q for name in QUIZZES for q in BANK[name]])


def test_decision_and_recall_shares():
    total = _total()
    assert total["decision"] / total["questions"] >= 1 / 3, total
    assert total["recall"] / total["questions"] <= 0.05, total


def test_no_length_cue():
    """Among single-answer questions the correct option is strictly the longest in at most a third."""
    total = _total()
    assert total["single"] > 0 and total["longest"] / total["single"] <= 1 / 3, total


def test_each_rule_catches_a_broken_question():
    good = {"question": "Which?", "type": "multiple_choice", "hint": "Think of 05 §1.", "kind": "decision",
            "section": "05 §1", "answers": [
                {"answer": "raise the learning rate first", "correct": True, "feedback": "Right: 05 §1 shows why."},
                {"answer": "raise r to 64 right away, keep the rest", "correct": False, "feedback": "No: 05 §1 shows why not."},
                {"answer": "raise alpha and keep r", "correct": False, "feedback": "No: 05 §1 shows why not."}]}
    sections = {"05": {1, 2}, "11": {1}, "03": {1}}
    assert rules.question_problems("05_choosing_settings", good, sections) == []
    assert not rules.correct_is_longest(good)

    def broken(change, quiz="05_choosing_settings"):
        q = _copy(good)
        change(q)
        return " | ".join(rules.question_problems(quiz, q, sections))

    assert "kind" in broken(lambda q: q.pop("kind"))
    assert "kind 'trivia'" in broken(lambda q: q.update(kind="trivia"))
    assert "no section" in broken(lambda q: q.pop("section"))
    assert "has no heading '## 9.'" in broken(lambda q: q.update(section="05 §9"))
    assert "comes after" in broken(lambda q: q.update(section="11 §1"))  # a forward reference
    assert "not 'NN §k'" in broken(lambda q: q.update(section="5.1"))
    assert "hint restates" in broken(lambda q: q.update(hint="Maybe: Raise the *learning rate* first, then see."))
    assert "hint restates" not in broken(lambda q: q.update(hint="Raise the learning rate? See 05 §1."))  # 4 words
    review = "12_review"
    assert broken(lambda q: q.update(section=["05 §1", "03 §1"]), review) == ""
    assert "at least two notebooks" in broken(lambda q: q.update(section="05 §1"), review)
    assert "at least two notebooks" in broken(lambda q: q.update(section=["05 §1", "05 §2"]), review)

    longest = _copy(good)
    longest["answers"][0]["answer"] = "raise the learning rate first, then watch the loss"
    assert rules.correct_is_longest(longest)
    longest["answers"][1]["answer"] = "raise r to 64 at once, and then watch the val loss"  # as long: no cue
    assert not rules.correct_is_longest(longest)

    ok = {"questions": 100, "decision": 34, "concept": 40, "compute": 21, "recall": 5, "single": 60, "longest": 20}
    assert rules.share_problems(ok) == []
    assert "decision share" in " ".join(rules.share_problems({**ok, "decision": 33, "concept": 41}))
    assert "recall share" in " ".join(rules.share_problems({**ok, "recall": 6, "compute": 20}))
    assert "length cue" in " ".join(rules.share_problems({**ok, "longest": 21}))


def test_the_report_script_measures_the_bank(tmp_path):
    """scripts/quiz_bank_report.py is a thin CLI over rules.bank_report: a folder with one broken file."""
    q = _copy(BANK["03_counting"][0])
    q["kind"], q["section"] = "recall", "07 §1"
    (tmp_path / "03_counting.json").write_text(json.dumps([q]))
    r = rules.bank_report(tmp_path, ROOT / "notebooks")
    assert r["total"]["questions"] == 1 and r["total"]["recall"] == 1
    assert any(p.startswith("03_counting Q1: section '07 §1' comes after") for p in r["problems"])
    assert any("decision share" in p for p in r["problems"]) and any("recall share" in p for p in r["problems"])


def test_validator_finds_each_kind_of_problem():
    good = BANK["02_lora_from_scratch"]
    assert validate_questions(good) == []
    mc = next(q for q in good if q["type"] == "multiple_choice")
    many = next(q for q in good if q["type"] == "many_choice")
    num = next(q for q in good if q["type"] == "numeric")

    def broken(q, change):
        q = _copy(q)
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
        "kind must be one of": broken(mc, lambda q: q.update(kind="Decision")),
        "section must be 'NN §k'": broken(mc, lambda q: q.update(section="notebook 5")),
        "or a list of them": broken(mc, lambda q: q.update(section=["05 §1", 5])),
    }
    for expected, problems in cases.items():
        assert any(expected in p for p in problems), (expected, problems)
    assert broken(mc, lambda q: q.update(kind="concept", section=["01 §2", "02 §1"])) == []
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


@pytest.mark.parametrize("name", QUIZZES)
def test_renders_with_jupyterquiz(name, monkeypatch):
    import jupyterquiz  # noqa: F401  (requirements-dev.txt pins it; an ImportError fails this test)
    import jupyterquiz.dynamic.display as jq_display

    shown = []
    monkeypatch.setattr(jq_display, "display", lambda *objs: shown.extend(objs))
    for ref in (BANK[name], str(QUIZ_DIR / f"{name}.json")):
        shown.clear()
        jupyterquiz.display_quiz(ref)
        page, script = shown[0].data, shown[1].data
        assert 'data-shuffleanswers="True"' in page
        m = re.match(r"var questions(\w+)=(.*?);\n\nif \(typeof Question === 'undefined'\)", script, re.S)
        assert m and m.group(1) in page
        assert json.loads(m.group(2)) == BANK[name]  # the questions reach the page intact
        for kind in {q["type"] for q in BANK[name]}:
            assert f"Question.register('{kind}'" in script  # a renderer exists for every type used


# ---------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------


def _unmark(text: str) -> str:
    """Markdown text as a reader sees it: marks (** * `) gone, whitespace collapsed."""
    return " ".join(re.sub(r"[*`]", "", text).split())


def _label(answer: str) -> str:
    """An option as its RadioButtons / Checkbox label reads: ** and ` marks gone."""
    return re.sub(r"\*\*|`", "", answer)


def _shown(value: str) -> str:
    """What an HTML widget shows as text: tags gone, entities decoded, whitespace collapsed."""
    value = re.sub(r"<(br|/?li|/?ul)>", " ", value)  # line breaks and list items separate words
    return " ".join(_unmark(html.unescape(re.sub(r"<[^>]+>", "", value))).split())


def _core(feedback: str) -> str:
    """The end of a feedback as the reader sees it (the widget may fold a leading "Right." into its verdict)."""
    return _unmark(feedback)[-40:]


def _mc(name="00_why_lora", k=0) -> dict:
    return BANK[name][k]


def _many() -> dict:
    return next(q for q in BANK["02_lora_from_scratch"] if q["type"] == "many_choice")


def test_multiple_choice_wrong_then_retry_then_right():
    q = _mc()
    quiz = Quiz([q, next(p for p in BANK["00_why_lora"][1:] if p["type"] == "multiple_choice")], shuffle=False)
    card = quiz.cards[0]
    assert quiz.score_label.value == "0 / 2 correct on first try"
    wrong = _wrong_index(q)
    card.choice.value = wrong
    card.check_button.click()
    assert "Not quite" in card.feedback.value and "Correct" not in card.feedback.value
    assert _core(q["answers"][wrong]["feedback"]) in _shown(card.feedback.value)
    assert quiz.score_label.value == "0 / 2 correct on first try"
    assert card.choice.disabled and card.check_button.disabled and not card.retry_button.disabled

    card.retry_button.click()
    assert card.choice.value is None and card.feedback.value == ""
    assert not card.choice.disabled and not card.check_button.disabled and card.retry_button.disabled

    right = _correct_index(q)
    card.choice.value = right
    card.check_button.click()
    assert card.feedback.value.startswith("<b>Correct.</b>")
    assert _core(q["answers"][right]["feedback"]) in _shown(card.feedback.value)
    assert _core(q["answers"][wrong]["feedback"]) not in _shown(card.feedback.value)
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
    assert _shown(card.hint.value) == "Hint: " + _unmark(q["hint"])
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
    assert _core(q["answers"][right[0]]["feedback"]) in _shown(fb)
    assert _core(q["answers"][wrong[0]]["feedback"]) in _shown(fb)
    assert _core(q["answers"][right[1]]["feedback"]) not in _shown(fb)  # unticked: not revealed
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


COUNT_Q = {  # a question of our own: the bank's numeric questions may change, these paths must not
    "question": "LoRA with r = 4 on the query and value projections (64 × 64) of 3 layers: trainable parameters?",
    "type": "numeric", "hint": "r·(in + out) per adapted matrix.", "check": "own", "answers": [
        {"type": "value", "value": 3072, "correct": True, "feedback": "Right: 2 matrices × 3 layers × 4·(64 + 64)."},
        {"type": "value", "value": 1536, "correct": False, "feedback": "That counts only one of the two projections."},
        {"type": "default", "feedback": "Not quite. Count r·(in + out) for each adapted matrix."}]}
PERCENT_Q = {"question": "What percent is trainable?", "type": "numeric", "precision": 3, "hint": "A ratio.",
             "check": "own_percent", "answers": [
                 {"type": "value", "value": 1.3244, "correct": True, "feedback": "Right: trainable / total."},
                 {"type": "default", "feedback": "Not quite: divide trainable by total, times 100."}]}


def test_numeric_paths():
    q = COUNT_Q
    assert validate_questions([COUNT_Q, PERCENT_Q]) == []
    quiz = Quiz([q], shuffle=False)
    card = quiz.cards[0]
    card.choice.value = "not a number"
    card.check_button.click()
    assert "Type a number" in card.feedback.value and card.first_try is None
    examples = [parse_number(x) for x in re.findall(r"[\d.,/e]+\d", card.choice.placeholder)]
    assert examples == [1500, 1500, 2 / 3, 1500]
    for _, _, other in NUMERIC:  # the placeholder never suggests an answer of the bank
        assert not any(grade(other, x).correct for x in examples)

    card.choice.value = "1536"
    card.check_button.click()
    assert "Not quite" in card.feedback.value and "only one of the two projections" in _shown(card.feedback.value)

    card.retry_button.click()
    assert card.choice.value == "" and not card.choice.disabled
    card.choice.value = "12345"
    card.check_button.click()
    assert _shown(card.feedback.value) == "Not quite. Count r·(in + out) for each adapted matrix."  # the default
    assert card.feedback.value.count("Not quite") == 1  # the default's own "Not quite." is not repeated

    card.retry_button.click()
    card.choice.value = " 3,072 "
    card.check_button.click()
    assert _shown(card.feedback.value) == "Correct. 2 matrices × 3 layers × 4·(64 + 64)."
    assert quiz.score_label.value == "0 / 1 correct on first try"

    pct = Quiz([PERCENT_Q], shuffle=False).cards[0]
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
    assert grade(q, 2.9) == Result(False, "no")
    assert parse_number("1/4") == 0.25 and parse_number("2e3") == 2000
    assert parse_number("") is None and parse_number("1/0") is None


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
                assert label == _label(card.question["answers"][j]["answer"])
            card.choice.value = _correct_index(card.question)
            card.check_button.click()
            assert card.feedback.value.startswith("<b>Correct.</b>")
        if card.question["type"] == "many_choice":
            labels = [box.description for box in card.checkboxes]
            assert labels == [_label(card.question["answers"][j]["answer"]) for j in card.order]


def test_widgets_carry_css_classes():
    quiz = Quiz([_mc(), _many(), COUNT_Q], shuffle=False)
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
    assert md_to_html("**bold** and `a<b` and $x < y$ and *it*") == \
        "<b>bold</b> and <code>a&lt;b</code> and $x &lt; y$ and <i>it</i>"
    assert md_to_html("$a*b*c$") == "$a*b*c$"  # math is left to MathJax
    assert md_to_html("- one\n- two") == "<ul><li>one</li><li>two</li></ul>"
    assert plain("`lora_A` is **trained**") == "lora_A is trained"
    verdict = feedback_html
    assert verdict(Result(True, "Right. Because `B` is zero.")) == "<b>Correct.</b> Because <code>B</code> is zero."
    assert verdict(Result(False, "No: it is frozen.")) == "<b>Not quite.</b> It is frozen."
    assert verdict(Result(False, "Right idea, wrong sign.")) == "<b>Not quite.</b> Right idea, wrong sign."


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
    labels = [_label(a["answer"]) for q in questions for a in q["answers"] if "answer" in a]
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
                assert _label(a["answer"]) in text
    _assert_reveals_nothing(text, questions)


def test_quiz_displays_as_widget_with_a_safe_text_fallback(capsys):
    questions = BANK["03_counting"]
    quiz = Quiz(questions, seed=0)
    bundle = quiz._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == quiz.widget.model_id
    assert bundle["text/plain"] == bundle["text/markdown"] == quiz.text() == repr(quiz)
    first_mc = next(c for c in quiz.cards if c.question["type"] == "multiple_choice")
    lines = [f"{ch}) {_label(a['answer'])}" for ch, a in zip("abcdefgh", first_mc.options)]
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


# ---------------------------------------------------------------------------
# The review: the exam first, then practice by notebook, one question at a time
# ---------------------------------------------------------------------------

STUB_EXAM = [  # two integrative questions of our own, so that these tests do not depend on 12_review.json
    {"question": "An 8B model and one 24 GB GPU: which way to fine-tune?", "type": "multiple_choice",
     "kind": "decision", "section": ["03 §1", "10 §1"], "hint": "Count the bytes per parameter.", "answers": [
         {"answer": "QLoRA: a 4-bit base and LoRA on top", "correct": True, "feedback": "Right: the stub's answer."},
         {"answer": "Full fine-tuning with Adam", "correct": False, "feedback": "No: the stub's wrong answer one."},
         {"answer": "LoRA on a 32-bit base", "correct": False, "feedback": "No: the stub's wrong answer two."}]},
    {"question": "Which are true of merging an adapter for serving?", "type": "many_choice",
     "kind": "concept", "section": ["07 §1", "02 §1"], "hint": "What does W + BA cost per token?", "answers": [
         {"answer": "no extra latency", "correct": True, "feedback": "Right: one matrix, as before."},
         {"answer": "one adapter per merged copy", "correct": True, "feedback": "Right: the copy holds one task."},
         {"answer": "it trains the base", "correct": False, "feedback": "No: merging adds B·A, it trains nothing."}]},
]


@pytest.fixture
def quiz_dir(tmp_path):
    """The shipped notebook quizzes and a 2-question stub exam, in a folder of their own."""
    for name in NOTEBOOKS:
        (tmp_path / f"{name}.json").write_text(json.dumps(BANK[name]), encoding="utf-8")
    (tmp_path / f"{REVIEW_QUIZ}.json").write_text(json.dumps(STUB_EXAM), encoding="utf-8")
    assert validate_questions(STUB_EXAM) == []
    return tmp_path


def test_review_is_the_exam_then_practice_by_notebook(quiz_dir):
    review = Review(seed=3, quiz_dir=quiz_dir)
    assert review.exam_size == 2 and review.topics[:2] == [REVIEW_QUIZ] * 2
    assert sorted(q["question"] for q in review.questions[:2]) == sorted(q["question"] for q in STUB_EXAM)
    practice = review.topics[2:]
    assert practice == sorted(practice) and list(dict.fromkeys(practice)) == NOTEBOOKS  # notebook by notebook
    for name in NOTEBOOKS:
        drawn = [q for t, q in zip(review.topics, review.questions) if t == name]
        assert sorted(map(json.dumps, drawn)) == sorted(map(json.dumps, BANK[name]))  # every question, once
    assert [q for q in review.questions if q in BANK["03_counting"]] != BANK["03_counting"]  # shuffled within
    again, other = Review(seed=3, quiz_dir=quiz_dir), Review(seed=4, quiz_dir=quiz_dir)
    assert again.questions == review.questions and again.orders == review.orders  # repeatably
    assert other.questions != review.questions
    for q, order in zip(review.questions, review.orders):  # options shuffled, none lost
        assert sorted(order) == list(range(len(q["answers"]) if q["type"] != "numeric" else 0))


def test_review_scores_the_exam_apart_and_practice_per_notebook(quiz_dir):
    review = Review(seed=3, quiz_dir=quiz_dir, notebook_dir="../notebooks/")
    assert review.score_label.value.startswith("Exam: 0 / 2 correct on first try")
    card = review.go(next(k for k in range(2) if review.questions[k]["type"] == "multiple_choice"))
    card.choice.value = _correct_index(card.question)
    card.check_button.click()
    i = next(k for k in range(2, len(review.questions)) if review.questions[k]["type"] == "multiple_choice")
    topic = review.topics[i]
    card = review.go(i)
    card.choice.value = _correct_index(card.question)
    card.check_button.click()
    j = next(k for k in range(2, len(review.questions))
             if review.questions[k]["type"] == "multiple_choice" and review.topics[k] != topic)
    other_topic = review.topics[j]
    card = review.go(j)
    card.choice.value = _wrong_index(card.question)
    card.check_button.click()
    assert review.score_label.value == "Exam: 1 / 2 correct on first try (earlier visits: none saved)"
    scores = review.topic_scores()
    assert list(scores) == NOTEBOOKS  # the exam is not a row of the table
    assert scores[topic] == (1, 1, len(BANK[topic])) and scores[other_topic][:2] == (0, 1)
    rows = review.topic_table.value.split("<tr>")[1:]
    assert len(rows) == len(NOTEBOOKS)
    row = next(r for r in rows if f">{topic}<" in r)
    assert f"href='../notebooks/{topic}.ipynb'" in row and "1 / 1 checked" in row
    assert review.score == 2 and review.topic_table in review.widget.children


def test_review_shows_one_question_at_a_time_and_remembers_first_tries(quiz_dir):
    from ipywidgets.widgets.widget import _instances

    review = Review(seed=0, quiz_dir=quiz_dir)
    assert review.holder.children == (review.card.widget,) and review.prev_button.disabled
    assert "question 1 of" in review.position.value and "the exam" in review.position.value
    i = next(k for k, q in enumerate(review.questions) if q["type"] == "multiple_choice")
    review.go(i).choice.value = _wrong_index(review.questions[i])
    review.card.check_button.click()
    review.next_button.click()
    assert review.index == i + 1 and f"question {i + 2} of {len(review.questions)}" in review.position.value
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
    review.jump.value = "05_choosing_settings"  # the selector jumps to that notebook's practice, then resets
    assert review.index == review.topics.index("05_choosing_settings") and review.jump.value == ""
    assert "practice: 05 Choosing" in review.position.value
    review.jump.value = REVIEW_QUIZ  # and back to the exam
    assert review.index == 0 and review.jump.value == ""
    assert review.go(10**6) is review.card and review.index == len(review.questions) - 1  # clamped
    assert review.next_button.disabled and review.card.widget in review.holder.children


def test_review_text_fallback_reveals_nothing(quiz_dir, capsys, monkeypatch):
    review = Review(seed=1, quiz_dir=quiz_dir)
    text = review.text()
    bundle = review._repr_mimebundle_()
    assert bundle["text/plain"] == bundle["text/markdown"] == text == repr(review)
    exam, _, practice = text.partition("**Quiz: review, part 2: practice by notebook**")
    assert exam.startswith("**Quiz: review, part 1: the exam**") and practice
    for k, (q, order) in enumerate(zip(review.questions, review.orders), start=1):
        assert f"{k}. {q['question']}" in (exam if k <= 2 else practice)
        for letter, j in zip("abcdefgh", order):
            assert f"{letter}) {_label(q['answers'][j]['answer'])}" in text  # options in the order shown
    _assert_reveals_nothing("**Quiz: x**\n" + exam.partition("\n")[2] + practice.partition("\n")[2],
                            review.questions)

    import lora_mini.quiz.review as review_mod
    from lora_mini import show_review

    made = []
    monkeypatch.setattr(review_mod, "Review", lambda seed=None: made.append(seed) or Review(seed=seed, quiz_dir=quiz_dir))
    show_review(seed=1)  # no IPython kernel here: display() prints the text
    assert made == [1] and capsys.readouterr().out.strip() == text.strip()


def test_the_shipped_review_opens_with_the_exam():
    """Notebook 12 as shipped: the exam of lora_mini/quizzes/12_review.json first, then every notebook's quiz."""
    review = Review(seed=0)
    assert review.exam_size == len(BANK[REVIEW_QUIZ]) >= 2
    assert len(review.questions) == sum(len(BANK[n]) for n in QUIZZES)
    assert set(review.topics[:review.exam_size]) == {REVIEW_QUIZ}
    n = next(i for i, q in enumerate(review.questions) if q["type"] == "multiple_choice")
    assert review.go(n) is review.card and review.card.question is review.questions[n]  # D's browser test


def test_rules_of_thumb_cite_what_the_course_measured():
    """Notebook 12 ends with rules of thumb: each cites the sections that measured it, all of them real."""
    nb = json.loads((ROOT / "notebooks" / "12_review.ipynb").read_text(encoding="utf-8"))
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
    summary = next(c for c in cells if re.match(r"## \d+\. Rules of thumb", c))
    assert summary is cells[-1]  # the last thing a learner reads
    rules_ = re.split(r"\n- ", summary)[1:]
    assert len(rules_) >= 12
    for rule in rules_:
        cited = re.findall(r"\b(\d\d) §(\d+)", rule)
        assert cited, f"cites no section: {rule[:60]}"
        for nn, k in cited:
            assert nn < "12" and int(k) in SECTIONS[nn], f"{nn} §{k} is not a section of the course: {rule[:60]}"
    topics = summary.lower()
    for topic in ["learning rate", "α", "rank", "targets", "qlora", "full fine-tuning", "peers", "merge",
                  "fit", "preserved"]:
        assert topic in topics, topic
