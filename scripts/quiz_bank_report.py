"""The quiz bank (lora_mini/quizzes/*.json) against the course's rules for questions (issue 14): one line
per file, then the totals. The rules and their limits live in lora_mini/quiz/rules.py.

    python scripts/quiz_bank_report.py            # every file in lora_mini/quizzes/
    python scripts/quiz_bank_report.py --problems # also every question that breaks a rule
"""
from __future__ import annotations

import sys
from pathlib import Path

from lora_mini.quiz import QUIZ_DIR
from lora_mini.quiz.rules import DECISION_MIN, LENGTH_CUE_MAX, RECALL_MAX, bank_report

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def main() -> None:
    r = bank_report(QUIZ_DIR, NOTEBOOK_DIR)
    print(f"{'file':<24} {'n':>3} {'decision':>8} {'concept':>7} {'compute':>7} {'recall':>6} {'longest/single':>14}")
    for name, f in [*r["files"].items(), ("TOTAL", r["total"])]:
        print(f"{name:<24} {f['questions']:>3} {f['decision']:>8} {f['concept']:>7} {f['compute']:>7} {f['recall']:>6} "
              f"{f['longest']:>7}/{f['single']:<6}")
    t = r["total"]
    print(f"decision share {t['decision'] / t['questions']:.1%} (>= {DECISION_MIN:.1%}), recall share "
          f"{t['recall'] / t['questions']:.1%} (<= {RECALL_MAX:.0%}), length cue {t['longest'] / max(t['single'], 1):.1%} "
          f"(<= {LENGTH_CUE_MAX:.1%}), {len(r['problems'])} rule problems")
    if "--problems" in sys.argv:
        print("\n".join(r["problems"]))


if __name__ == "__main__":
    main()
