"""Quiz progress that survives a restart: each question's first-try result, in a small JSON file.

Every quiz (``show_quiz``, and the review) records the first Check of each question here, so that the
review notebook can show what was done in earlier visits. Nothing depends on it: a file that cannot be
read or written is ignored, and the course works the same without one.

- where: ``~/.lora-mini/progress.json``; the environment variable ``LORA_MINI_PROGRESS`` names another file,
  and ``LORA_MINI_PROGRESS=off`` turns saving off. Without the variable, only quizzes answered in a Jupyter
  kernel are saved (a script or a test that clicks a quiz never writes to the home folder);
- what: ``{"version": 1, "notebooks": {"02_lora_from_scratch": {"<question id>": {"right": true,
  "when": "2026-11-30"}}}}``; a question's id is a hash of its text, so it does not depend on the shuffle;
  a later visit's first try replaces an earlier one;
- clearing is one call: ``from lora_mini.progress import clear_progress; clear_progress()``.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import sys
from pathlib import Path

VERSION = 1
ENV = "LORA_MINI_PROGRESS"
DEFAULT_PATH = Path("~/.lora-mini/progress.json")

__all__ = ["clear_progress", "load_progress", "progress_path", "question_id", "record_first_try", "saving", "summary"]


def progress_path() -> Path | None:
    """The progress file, or None when saving is turned off (``LORA_MINI_PROGRESS=off``)."""
    value = os.environ.get(ENV, "").strip()
    if value.lower() in ("off", "0", "no", "false"):
        return None
    return Path(value or DEFAULT_PATH).expanduser()


def _in_kernel() -> bool:
    """Running in a Jupyter kernel (where a learner answers quizzes), not a script or a test run."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return getattr(shell, "kernel", None) is not None


def saving() -> bool:
    """Whether first tries are saved now: LORA_MINI_PROGRESS names a file, or (unset) we run in a kernel."""
    return progress_path() is not None and (bool(os.environ.get(ENV, "").strip()) or _in_kernel())


def question_id(question: dict) -> str:
    """A short, stable id for a question: the first 12 hex digits of the SHA-256 of its text."""
    return hashlib.sha256(question["question"].encode("utf-8")).hexdigest()[:12]


def load_progress() -> dict[str, dict[str, dict]]:
    """{notebook: {question id: {"right": bool, "when": "YYYY-MM-DD"}}}; empty if there is no readable file."""
    path = progress_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        return {}
    notebooks = data.get("notebooks") if isinstance(data, dict) and data.get("version") == VERSION else None
    if not isinstance(notebooks, dict):
        return {}
    return {name: {qid: entry for qid, entry in entries.items()
                   if isinstance(entry, dict) and isinstance(entry.get("right"), bool)}
            for name, entries in notebooks.items() if isinstance(entries, dict)}


def _save(notebooks: dict) -> bool:
    """Write atomically (a temporary file, then a rename); False if it cannot be written."""
    path = progress_path()
    if path is None:
        return False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": VERSION, "notebooks": notebooks}, indent=1, sort_keys=True),
                       encoding="utf-8")
        os.replace(tmp, path)
        return True
    except OSError:
        return False


def record_first_try(notebook: str, question: dict, right: bool, when: datetime.date | None = None) -> bool:
    """Save the first Check of ``question`` (of ``notebook``) in this visit; True if it was written."""
    if not saving():
        return False
    notebooks = load_progress()
    when = when or datetime.date.today()
    notebooks.setdefault(notebook, {})[question_id(question)] = {"right": bool(right), "when": when.isoformat()}
    return _save(notebooks)


def summary(questions_by_notebook: dict[str, list[dict]] | None = None) -> dict[str, tuple[int, int, str]]:
    """{notebook: (right on first try, questions tried, date of the latest try)} from earlier visits.

    With ``questions_by_notebook`` only questions still in those quizzes count (an edited question
    gets a new id, and its old result is left out).
    """
    out = {}
    for name, entries in sorted(load_progress().items()):
        if questions_by_notebook is not None:
            current = {question_id(q) for q in questions_by_notebook.get(name, [])}
            entries = {qid: e for qid, e in entries.items() if qid in current}
        if entries:
            latest = max(str(e.get("when", "")) for e in entries.values())
            out[name] = (sum(e["right"] for e in entries.values()), len(entries), latest)
    return out


def clear_progress() -> Path | None:
    """Forget all saved progress: delete the progress file. Returns the path that was cleared (None: saving off)."""
    path = progress_path()
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    return path
