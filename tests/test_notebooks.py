"""The committed notebooks: executed top to bottom in one go, nothing stale or out of order."""
from pathlib import Path

import nbformat
import pytest

ALL_NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").rglob("*.ipynb"))
NOTEBOOKS = [p for p in ALL_NOTEBOOKS if p.name[:2].isdigit()]  # the numbered lessons


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=lambda p: p.name)
def test_committed_in_execution_order(path):
    nb = nbformat.read(path, as_version=4)
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"re-run {path.name} with scripts/execute_notebooks.py"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_style(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert len(cell.source.splitlines()) <= 25, f"a code cell of {path.name} is too long:\n{cell.source}"
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "What to notice" in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_its_quiz(path):
    from lora_mini import load_questions

    nb = nbformat.read(path, as_version=4)
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    if path.stem == "12_review":  # the review asks every question of the course
        assert "show_review(" in last.source
        return
    assert f'show_quiz("{path.stem}"' in last.source
    assert len(load_questions(path.stem)) >= 6



def test_00_starts_with_the_setup_check():
    """The course's first code cell is the setup check, exactly as lora_mini.doctor ships it."""
    from lora_mini.doctor import NOTEBOOK_CELL

    nb = nbformat.read(Path(__file__).parent.parent / "notebooks" / "00_why_lora.ipynb", as_version=4)
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source.strip() == NOTEBOOK_CELL.strip()
