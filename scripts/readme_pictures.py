"""Make the README's pictures from the notebooks themselves: run each in JupyterLab (headless Chromium)
and take a screenshot of one cell's output, widgets included.

    python scripts/readme_pictures.py          # writes docs/rank_slider.png, docs/face_off.png, docs/adapter_heatmap.png

Needs what the browser tests need: Debian's chromium and Python playwright (requirements-dev.txt).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from labdriver import Lab, browser_missing, launch_chromium, open_and_run_all  # noqa: E402

# picture: (notebook, a pattern that the source of the code cell whose output it shows starts with)
PICTURES = {
    "rank_slider.png": ("00_why_lora.ipynb", r"^\s*rank_explorer\(matrices\)"),
    "face_off.png": ("04_face_off.ipynb", r"^\s*full = load_base\(\)"),
    "adapter_heatmap.png": ("06_inside_lora.ipynb", r"^\s*def show\(r, layer\):"),
}


def cell_output(page, start: str):
    """The output area of the one code cell whose source starts with the pattern ``start``."""
    editor = page.locator(".jp-InputArea-editor", has_text=re.compile(start))
    cells = page.locator(".jp-CodeCell").filter(has=editor)
    assert cells.count() == 1, f"{cells.count()} code cells start with {start!r}"
    return cells.locator(".jp-Cell-outputArea")


def main() -> None:
    missing = browser_missing()
    if missing:
        sys.exit(missing)
    from playwright.sync_api import sync_playwright

    out = ROOT / "docs"
    out.mkdir(exist_ok=True)
    with Lab(ROOT / "notebooks") as lab, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for picture, (notebook, line) in PICTURES.items():
            seconds = open_and_run_all(page, lab, notebook)
            area = cell_output(page, line)
            area.scroll_into_view_if_needed()
            page.wait_for_timeout(1000)  # plots finish drawing
            area.screenshot(path=out / picture)
            lab.shut_down_kernels()
            print(f"docs/{picture}: {notebook} ran in {seconds:.1f} s")
        browser.close()


if __name__ == "__main__":
    main()
