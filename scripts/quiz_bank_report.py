"""The quiz bank against the course's rules for questions (issue 14): one line per file, then the totals.

    python scripts/quiz_bank_report.py            # every file in lora_mini/quizzes/
    python scripts/quiz_bank_report.py --problems # also every question that breaks a rule

Rules measured:
- kind: every question says what it asks for: "decision" (a practitioner's choice, answered from what the
  course measured), "concept" (why or how something works), "compute" (computing the number is the lesson),
  "recall" (a figure of the toy or a detail of lora_mini). Decisions >= 1/3 of the bank, recall <= 5%.
- section: every question names the section that teaches it, "NN §k" (notebook NN, its heading "## k. ..."),
  or a list of them (the review's integrative questions); never a notebook after the quiz's own.
- length cue: among single-answer questions the correct option is strictly the longest in <= 1/3 of them.
- hint: shares no run of five or more words with the correct option(s).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUIZ_DIR = ROOT / "lora_mini" / "quizzes"
NOTEBOOK_DIR = ROOT / "notebooks"
KINDS = ("decision", "concept", "compute", "recall")
SECTION = re.compile(r"^(\d\d) §(\d+)$")


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def shared_run(a: str, b: str, n: int = 5) -> str | None:
    """The first run of n words that a and b share, or None."""
    wa, wb = words(a), words(b)
    runs = {tuple(wb[i:i + n]) for i in range(len(wb) - n + 1)}
    return next((" ".join(wa[i:i + n]) for i in range(len(wa) - n + 1) if tuple(wa[i:i + n]) in runs), None)


def notebook_sections(notebook_dir: Path = NOTEBOOK_DIR) -> dict[str, set[int]]:
    """{"05": {1, 2, ...}}: the numbered "## k." headings of every numbered notebook."""
    out = {}
    for path in sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        out[path.name[:2]] = {int(m) for m in re.findall(r"^## (\d+)\.", text, re.M)}
    return out


def sections_of(q: dict) -> list[str]:
    s = q.get("section")
    return [s] if isinstance(s, str) else list(s or [])


def question_problems(name: str, q: dict, sections: dict[str, set[int]]) -> list[str]:
    problems = []
    if q.get("kind") not in KINDS:
        problems.append(f"kind {q.get('kind')!r} is not one of {KINDS}")
    if not sections_of(q):
        problems.append("no section")
    for s in sections_of(q):
        m = SECTION.match(s)
        if not m:
            problems.append(f"section {s!r} is not 'NN §k'")
        elif int(m.group(2)) not in sections.get(m.group(1), set()):
            problems.append(f"section {s!r}: notebook {m.group(1)} has no heading '## {m.group(2)}.'")
        elif m.group(1) > name[:2]:
            problems.append(f"section {s!r} comes after this quiz's notebook {name[:2]}")
    right = [a.get("answer", "") for a in q["answers"] if a.get("correct")]
    for r in right:
        run = shared_run(q["hint"], r)
        if run:
            problems.append(f"hint restates the correct option: '{run}'")
    return problems


def correct_is_longest(q: dict) -> bool:
    lengths = [(len(a["answer"]), a["correct"]) for a in q["answers"]]
    best = max(n for n, _ in lengths)
    return [c for n, c in lengths if n == best] == [True]


def report(quiz_dir: Path = QUIZ_DIR, notebook_dir: Path = NOTEBOOK_DIR) -> dict:
    sections = notebook_sections(notebook_dir)
    files, problems = {}, []
    for path in sorted(quiz_dir.glob("*.json")):
        qs = json.loads(path.read_text())
        single = [q for q in qs if q["type"] == "multiple_choice"]
        files[path.stem] = {
            "questions": len(qs),
            **{k: sum(q.get("kind") == k for q in qs) for k in KINDS},
            "single": len(single),
            "longest": sum(correct_is_longest(q) for q in single),
        }
        problems += [f"{path.stem} Q{i + 1}: {p}" for i, q in enumerate(qs) for p in question_problems(path.stem, q, sections)]
    total = {k: sum(f[k] for f in files.values()) for k in ("questions", *KINDS, "single", "longest")}
    return {"files": files, "total": total, "problems": problems}


def main() -> None:
    r = report()
    print(f"{'file':<24} {'n':>3} {'decision':>8} {'concept':>7} {'compute':>7} {'recall':>6} {'longest/single':>14}")
    for name, f in [*r["files"].items(), ("TOTAL", r["total"])]:
        print(f"{name:<24} {f['questions']:>3} {f['decision']:>8} {f['concept']:>7} {f['compute']:>7} {f['recall']:>6} "
              f"{f['longest']:>7}/{f['single']:<6}")
    t = r["total"]
    print(f"decision share {t['decision'] / t['questions']:.1%} (>= 33.3%), recall share {t['recall'] / t['questions']:.1%} "
          f"(<= 5%), length cue {t['longest'] / max(t['single'], 1):.1%} (<= 33.3%), {len(r['problems'])} rule problems")
    if "--problems" in sys.argv:
        print("\n".join(r["problems"]))


if __name__ == "__main__":
    main()
