"""Self-check quizzes for the notebooks: ``show_quiz("02_lora_from_scratch")``, and the review ``show_review()``.

One module per job, read top to bottom:

- ``bank``: the question files (``lora_mini/quizzes/*.json``, jupyterquiz's schema), loading and validation;
- ``rules``: the bank's rules for questions, measured (kind, section, length cue, hints);
- ``grading``: ``grade`` (one pure function, as jupyterquiz grades) and ``parse_number`` for typed answers;
- ``markup``: markdown-lite to HTML, and the answer-free text view;
- ``widget``: ``QuestionCard`` and ``Quiz`` (ipywidgets), ``show_quiz``; ``css``: their look;
- ``review``: ``Review``, the exam then practice by notebook, one question at a time; ``show_review``.
"""
from .bank import (QUIZ_DIR, REVIEW_QUIZ, TITLES, load_questions, quiz_names, quiz_text, quiz_title, resolve_quiz,
                   validate_questions)
from .grading import Result, grade, parse_number
from .review import Review, show_review
from .widget import QuestionCard, Quiz, show_quiz

__all__ = ["QUIZ_DIR", "REVIEW_QUIZ", "TITLES", "QuestionCard", "Quiz", "Result", "Review", "grade", "load_questions",
           "parse_number", "quiz_names", "quiz_text", "quiz_title", "resolve_quiz", "show_quiz", "show_review",
           "validate_questions"]
