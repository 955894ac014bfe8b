"""The shipped base: small, fast to load, as accurate as documented, and reproducible."""
import re
import time
from pathlib import Path

import torch

from lora_mini import BASE_PATH, BASE_TASKS, base_accuracy, evaluate, load_base, pretrain
from lora_mini.pretrain import BASE_CONFIG

README = Path(__file__).parent.parent / "README.md"


def test_checkpoint_is_small_and_loads_without_training():
    # Its speed (warm load_base() <= 1 s) is a target of the benchmark (python -m lora_mini.bench), not of this suite,
    # whose machine may be busy; 30 s catches only a load that pretrains again (minutes) or hangs.
    assert BASE_PATH.stat().st_size < 2_000_000
    load_base()  # warm the imports
    t0 = time.perf_counter()
    model = load_base()
    assert time.perf_counter() - t0 < 30
    assert model.config == BASE_CONFIG and not model.training


def test_base_reaches_its_documented_accuracy():
    documented = base_accuracy()
    measured = evaluate(load_base(), BASE_TASKS)
    assert set(documented) == set(BASE_TASKS)
    for task in BASE_TASKS:
        assert measured[task] >= documented[task] - 0.01, task
        assert documented[task] >= 0.95
        row = re.search(rf"\| `{task}` \| (\d+\.\d)%", README.read_text())
        assert row, f"README has no accuracy row for {task}"
        assert abs(float(row.group(1)) - 100 * documented[task]) < 0.1


def test_pretraining_is_deterministic():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = pretrain(steps=3, progress=False), pretrain(steps=3, progress=False)
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert not torch.equal(a.lm_head.weight, load_base().cpu().lm_head.weight)  # 3 steps is not the base
