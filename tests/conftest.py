import pytest
import torch

from lora_mini import load_base


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def base():
    """A fresh copy of the shipped pretrained base, on the CPU."""
    return load_base().cpu()


def snapshot(model: torch.nn.Module) -> dict:
    """Everything a failed call must leave as it was: module types, weights, requires_grad."""
    return {
        "modules": [(n, type(m).__name__) for n, m in model.named_modules()],
        "state": {k: v.clone() for k, v in model.state_dict().items()},
        "grad": {n: p.requires_grad for n, p in model.named_parameters()},
    }


def assert_same(before: dict, after: dict) -> None:
    assert before["modules"] == after["modules"]
    assert before["grad"] == after["grad"]
    assert before["state"].keys() == after["state"].keys()
    for k, v in before["state"].items():
        assert torch.equal(v, after["state"][k]), k


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread, as the sweep scripts run: their caches are then reproduced bit for bit."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium per test process, kept while it runs (Playwright's sync API allows one instance
    per thread): every test that drives JupyterLab opens its pages in it. While it runs, Playwright's event loop
    counts as running in this thread: a test that calls asyncio.run() in-process would fail after it."""
    from labdriver import launch_chromium, require_browser

    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()
