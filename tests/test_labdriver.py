"""What a browser test runs of a notebook (labdriver.browser_copy), on small notebooks written here."""
import pytest

from labdriver import VIEW_MIME, browser_copy


def _cell(source: str, view: str | None = None) -> dict:
    outputs = [{"output_type": "display_data", "data": {VIEW_MIME: {"model_id": view}}, "metadata": {}}] if view else []
    return {"cell_type": "code", "source": source, "metadata": {}, "outputs": outputs, "execution_count": 1}


def _notebook(cells: list[dict]) -> dict:
    state = {  # a box holding a slider; a quiz (class lora-quiz) holding a check box and a text box
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_slider"], "_dom_classes": []}},
        "slider": {"model_name": "IntSliderModel", "state": {}},
        "quiz": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_tick", "IPY_MODEL_text"],
                                                       "_dom_classes": ["lora-quiz"]}},
        "tick": {"model_name": "CheckboxModel", "state": {}},
        "text": {"model_name": "TextModel", "state": {}},
        "bar": {"model_name": "FloatProgressModel", "state": {}},
    }
    return {"cells": cells, "metadata": {"widgets": {"application/vnd.jupyter.widget-state+json": {"state": state}}},
            "nbformat": 4, "nbformat_minor": 5}


def test_the_cut_ends_at_the_last_control_then_the_quiz_and_what_it_calls():
    cells = [_cell("import torch"), _cell("model = train()", "bar"), _cell("show(model)", "box"),
             _cell("heavy = train(model)", "bar"), _cell("from lora_mini import show_review"),
             {"cell_type": "markdown", "source": "## Quiz", "metadata": {}}, _cell("show_review(seed=0)", "quiz")]
    cut, controls = browser_copy(_notebook(cells))
    assert [c["source"] for c in cut["cells"]] == ["import torch", "model = train()", "show(model)",
                                                 "from lora_mini import show_review", "show_review(seed=0)"]
    assert controls == 1  # the slider; the quiz's check box and text box are not counted
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in cut["cells"])
    assert "widgets" not in cut["metadata"]


def test_the_second_passs_copy_keeps_every_code_cell_in_order():
    cells = [_cell("import torch"), _cell("show(model)", "box"), _cell("heavy = train(model)", "bar"),
             {"cell_type": "markdown", "source": "## Quiz", "metadata": {}}, _cell("show_review(seed=0)", "quiz")]
    copy, controls = browser_copy(_notebook(cells), every_cell=True)
    assert [c["source"] for c in copy["cells"]] == ["import torch", "show(model)", "heavy = train(model)",
                                                  "show_review(seed=0)"]
    assert controls == 1
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in copy["cells"])


def test_a_notebook_without_its_outputs_is_refused_with_the_fix():
    cells = [_cell("show(model)"), _cell("show_quiz('00_why_lora')")]
    with pytest.raises(ValueError, match="execute it"):
        browser_copy(_notebook(cells))
