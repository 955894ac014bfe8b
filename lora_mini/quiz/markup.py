"""Quiz text: a few markdown marks to HTML for the widgets, option labels as plain text, and the
answer-free text view shown where no widget frontend is (a console, a notebook exported to HTML)."""
from __future__ import annotations

import html
import re
from typing import Sequence

MATH = re.compile(r"(\$\$.+?\$\$|(?<!\\)\$.+?(?<!\\)\$)", re.S)
CODE = re.compile(r"`([^`]+)`")
BOLD = re.compile(r"\*\*(.+?)\*\*")
ITALIC = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
KIND_LABELS = {"multiple_choice": "choose one", "many_choice": "choose all that apply", "numeric": "type a number"}


def md_to_html(text: str) -> str:
    """Markdown-lite to HTML: `code`, **bold**, *italic*, line breaks, "- " lists; $math$ kept for MathJax."""
    out = []
    for k, part in enumerate(MATH.split(text)):
        if k % 2:  # math: only escape, the widget's MathJax typesets it
            out.append(html.escape(part, quote=False))
            continue
        pieces = []
        for m, piece in enumerate(CODE.split(part)):
            piece = html.escape(piece, quote=False)
            if m % 2:
                pieces.append(f"<code>{piece}</code>")
            else:
                piece = BOLD.sub(r"<b>\1</b>", piece)
                pieces.append(ITALIC.sub(r"<i>\1</i>", piece))
        out.append("".join(pieces))
    lines = "".join(out).split("\n")
    if len(lines) > 1 and all(line.startswith("- ") for line in lines):
        return "<ul>" + "".join(f"<li>{line[2:]}</li>" for line in lines) + "</ul>"
    return "<br>".join(lines)


def plain(text: str) -> str:
    """An option as plain text for a RadioButtons / Checkbox label: markdown marks removed."""
    return BOLD.sub(r"\1", CODE.sub(r"\1", text))


def default_order(question: dict) -> list[int]:
    """The options in file order (a numeric question has none)."""
    return list(range(len(question["answers"]))) if question["type"] != "numeric" else []


def text_view(questions: Sequence[dict], orders: Sequence[Sequence[int]], title: str, start: int = 1) -> str:
    """Questions and options as markdown in the order shown: never which option is right, never feedback."""
    lines = [f"**Quiz: {title}** ({len(questions)} questions; run the notebook in JupyterLab to check your answers)", ""]
    for n, (q, order) in enumerate(zip(questions, orders), start=start):
        lines.append(f"{n}. {q['question']} *({KIND_LABELS[q['type']]})*")
        for letter, j in zip("abcdefghijklmnopqrstuvwxyz", order):
            lines.append(f"    - {letter}) {plain(q['answers'][j]['answer'])}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
