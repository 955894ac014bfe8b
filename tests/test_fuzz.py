"""Fuzz the public API (issue 18): random sequences of calls, with random valid and invalid arguments, on the
shipped base. After every call, either it worked and did what its docstring says, or it raised an error from
lora_mini.errors and the model is bit-identical to before (module types, every state_dict tensor byte for byte,
requires_grad, merged/disabled flags, train/eval mode). Any other exception fails the test.

Derandomized (hypothesis's fixed seed), so CI sees the same sequences every run; about a minute on 2 cores.
"""
import atexit
import contextlib
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from safetensors.torch import load_file, save_file
from test_bad_input import assert_full_same, full_snapshot

from lora_mini import (
    LoraMiniError,
    LoRALinear,
    QuantLinear,
    count_parameters,
    disable_lora,
    evaluate,
    export_peft,
    import_peft,
    inject_lora,
    load_adapter,
    load_base,
    lora_state_dict,
    loraplus_param_groups,
    make_dataset,
    merge_lora,
    mixed_adapters,
    quantize_base,
    reset_lora,
    save_adapter,
    train,
    unmerge_lora,
)
from lora_mini.lora import LORA_PARAMETERS

BASE = load_base().cpu()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one torch thread is many times faster on a busy 2-core machine (no threads spinning)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _copy(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model)

IDX = torch.randint(0, 18, (2, 17), generator=torch.Generator().manual_seed(0))  # a fixed batch of 2 rows
INF, NAN = math.inf, math.nan


def _files() -> dict[str, Path]:
    """Adapter files and PEFT folders, good and bad, made once; the fuzzer loads them into whatever it built."""
    root = Path(tempfile.mkdtemp(prefix="lora-fuzz-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    good = load_base().cpu()
    inject_lora(good, ["q_proj", "v_proj"], r=4, alpha=8)
    with torch.no_grad():
        for layer in (m for m in good.modules() if isinstance(m, LoRALinear)):
            layer.lora_B.normal_(std=0.02)
    files = {"good": save_adapter(good, root / "good.safetensors"), "peft": export_peft(good, root / "peft")}
    tensors, meta = lora_state_dict(good), {"format": "lora_mini", "r": "4", "alpha": "8.0", "use_rslora": "false"}
    key = "blocks.0.attn.q_proj.lora_A"
    for name, bad, m in [("nan", tensors[key].clone().fill_(NAN), meta), ("int", tensors[key].long(), meta),
                         ("f64", tensors[key].double().fill_(1e300), meta), ("noalpha", tensors[key], {"format": "lora_mini", "r": "4"}),
                         ("rabc", tensors[key], meta | {"r": "abc"}), ("rslora", tensors[key], meta | {"use_rslora": "maybe"}),
                         ("r8", tensors[key], meta | {"r": "8"})]:
        files[name] = root / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in tensors.items()} | {key: bad.contiguous()}, files[name], metadata=m)
    files["header"] = root / "header.safetensors"
    files["header"].write_bytes((2).to_bytes(8, "little") + b"[]")
    dora = load_base().cpu()
    inject_lora(dora, ["q_proj"], r=2, alpha=4, use_dora=True)
    with torch.no_grad():
        for layer in (m for m in dora.modules() if isinstance(m, LoRALinear)):
            layer.lora_B.normal_()
            layer.lora_magnitude_vector[:4] = 0.0  # zero magnitudes: merge and unmerge must stay finite
    files["dora"] = export_peft(dora, root / "dora")
    for name, text in (("peft_inf", None), ("peft_deep", "[" * 50_000 + "]" * 50_000)):
        folder = export_peft(good, root / name)
        config = (folder / "adapter_config.json").read_text()
        (folder / "adapter_config.json").write_text(text or config.replace('"lora_alpha": 8', '"lora_alpha": Infinity'))
        files[name] = folder
    return files


FILES = _files()


def _starts() -> dict[str, nn.Module]:
    """Models a sequence starts from: the base, and bases already carrying LoRA, so calls get deep quickly."""
    lora, dora, dora0, qlora = _copy(BASE), _copy(BASE), _copy(BASE), _copy(BASE)
    inject_lora(lora, ["q_proj", "v_proj"], r=4, alpha=8)
    inject_lora(dora, ["q_proj"], r=2, alpha=4, use_dora=True)
    with torch.no_grad():  # DoRA's edge cases: a zero row of W + ΔW, and zero magnitudes
        dora0.blocks[0].attn.q_proj.weight[5] = 0.0
        inject_lora(dora0, ["q_proj"], r=2, alpha=4, use_dora=True)
        for layer in (m for m in dora0.modules() if isinstance(m, LoRALinear)):
            layer.lora_B.normal_()
            layer.lora_B[5] = 0.0
            layer.lora_magnitude_vector[:4] = 0.0
    quantize_base(qlora, block_size=64)
    inject_lora(qlora, ["q_proj", "v_proj"], r=4, alpha=8)
    merged = _copy(lora)
    with torch.no_grad():
        for layer in (m for m in merged.modules() if isinstance(m, LoRALinear)):
            layer.lora_B.normal_(std=0.02)
    merge_lora(merged)
    return {"base": BASE, "lora": lora, "dora": dora, "dora0": dora0, "qlora": qlora, "merged": merged}


@dataclass
class Arg:
    """An argument's valid values and its invalid ones; a call gets all valid, or exactly one invalid argument."""

    valid: list
    invalid: list


one_of = Arg


def _event(text: str) -> None:
    if currently_in_test_context():  # hypothesis's statistics (pytest --hypothesis-show-statistics)
        event(text)


# Arguments: valid values first, then invalid ones (wrong type, out of range, inf, nan, absurd sizes).
R = one_of([1, 2, 4], [10**12, 0, -1, 2.5, "4", True, None])
ALPHA = one_of([1, 8, 16.0], [INF, NAN, 0, -1.0, "8", None])
DROPOUT = one_of([0.0, 0.0, 0.1], [NAN, 1.0, -0.1, "0"])
TARGETS = one_of([["q_proj"], ["q_proj", "v_proj"], "v_proj", ["fc1"], ["lm_head"]],
                 [[], None, ["nope"], ["attn"], [3], "tok_emb", 5])
VARIANT = one_of([{}, {}, {"use_rslora": True}, {"use_dora": True}, {"init_lora_weights": "pissa"}],
                 [{"use_rslora": "yes"}, {"use_dora": 1}, {"init_lora_weights": "svd"}])
DATA = one_of(["rotate", ["rotate", "increment"], "dataset"],
              ["rotat", [], 5, "oov", "empty", None])
STEPS = one_of([1, 2], [-5, 0, 2.5, "2", None])
LR = one_of([1e-3, 1e-2], [INF, NAN, 0, -1e-3, "1e-3"])
BATCH = one_of([4, 8], [0, -1, 2.5])
EVAL = one_of([(), ["rotate"]], [["rotat"], [5], 5])
EXTRA = one_of([{}, {"stop_at": 0.5, "eval_every": 1}, {"callback": lambda step, m: None}],
               [{"callback": 5}, {"stop_at": "0.9"}, {"stop_at": 2.0}, {"eval_every": -1}, {"weight_decay": INF},
                {"progress": "no"}, {"seed": -1}])
PATH = one_of(["a.safetensors", "b" * 240 + ".safetensors"], ["", "missing/a.safetensors", ".", 5, None])
LOAD = one_of(["good", "saved"], ["nan", "int", "f64", "noalpha", "rabc", "rslora", "r8", "header", "missing", "", 5])
PEFT = one_of(["peft", "dora"], ["peft_inf", "peft_deep", "missing", 5])
KIND = one_of(["nf4", "int8"], ["nf5", 3, None])
BLOCK = one_of([64, 8], [2**40, 3, 0, 64.0])
LRPLUS = one_of([1e-3], [0, INF, "1e-3"])
WHICH = one_of([[0, 0], [0, 1]], [[2, 0], [-1, 0], [0.5, 1.0], "zero", [[0, 1]]])


def _dataset(kind: str):
    if kind == "dataset":
        return make_dataset("rotate", 16, seed=0)
    if kind == "oov":
        idx, targets = make_dataset("rotate", 4, seed=0)
        return idx.clone().fill_(99), targets
    if kind == "empty":
        idx, targets = make_dataset("rotate", 4, seed=0)
        return idx[:0], targets[:0]
    return kind


class Run:
    """One model, its open with-blocks, the files it saved, and the checks of each call's documented effect."""

    def __init__(self, workdir: Path, start: str) -> None:
        self.model = _copy(STARTS[start])
        self.blocks: list[tuple[str, contextlib.AbstractContextManager, dict]] = []  # open with-blocks
        self.workdir = workdir
        self.saved: list[Path] = []

    def layers(self) -> list[LoRALinear]:
        return [m for m in self.model.modules() if isinstance(m, LoRALinear)]

    def out(self) -> torch.Tensor:
        """Logits on the fixed batch (inside mixed_adapters: as many rows as `which` names)."""
        rows = next((len(info[1]) for kind, _, info in reversed(self.blocks) if kind == "mixed"), len(IDX))
        with torch.no_grad():
            return self.model(IDX[:rows])[0]

    def call(self, data: st.DataObject) -> None:
        """Draw one call, make it, and check: documented effect, or a LoraMiniError and nothing changed."""
        op = data.draw(st.sampled_from(OPS), label="op")
        breakable = [name for name, arg in op.args.items() if arg.invalid]
        bad = data.draw(st.sampled_from([None, None, *breakable]), label="invalid argument")  # None: all valid
        args = {name: data.draw(st.sampled_from(arg.invalid if name == bad else arg.valid), label=f"{op.__name__}.{name}")
                for name, arg in op.args.items()}
        self.apply(op, args)

    def apply(self, op, args: dict) -> None:
        """Make one call: it works (and its op checks the documented effect), or a LoraMiniError changes nothing."""
        before, out_before = full_snapshot(self.model), self.out()
        try:
            op(self, out_before, **args)
        except LoraMiniError as e:
            _event(f"{op.__name__}: {type(e).__name__}")
            assert_full_same(before, full_snapshot(self.model))
            return
        _event(f"{op.__name__}: worked")
        # worked: whatever it did, the model still computes finite outputs
        assert torch.isfinite(self.out()).all(), f"{op.__name__}({args}) left non-finite outputs"




def op(**args):
    def wrap(fn):
        fn.args = args
        return fn
    return wrap


@op(targets=TARGETS, r=R, alpha=ALPHA, dropout=DROPOUT, variant=VARIANT)
def do_inject(run, out_before, targets, r, alpha, dropout, variant):
    names = inject_lora(run.model, targets, r=r, alpha=alpha, dropout=dropout, **variant)
    modules = dict(run.model.named_modules())
    assert all(isinstance(modules[n], LoRALinear) for n in names)
    for module in run.model.modules():  # only A and B (and DoRA's m) train: W and everything else frozen
        for name, p in module.named_parameters(recurse=False):
            assert p.requires_grad == (isinstance(module, LoRALinear) and name in LORA_PARAMETERS)
    if not any(layer.merged for layer in run.layers()) and dropout == 0.0:
        assert torch.allclose(run.out(), out_before, atol=1e-4)  # B = 0 (or PiSSA's exact split): output unchanged


@op()
def do_merge(run, out_before):
    weights = {k: v.clone() for k, v in run.model.state_dict().items()}
    was_merged = any(layer.merged for layer in run.layers())
    merge_lora(run.model)
    assert all(layer.merged for layer in run.layers())
    assert torch.allclose(run.out(), out_before, atol=1e-3)  # merging changes where ΔW lives, not the output
    if not was_merged:  # and unmerging gives the weights back (up to rounding)
        back = _copy(run.model)
        unmerge_lora(back)
        assert all(torch.allclose(v, weights[k], atol=1e-5) for k, v in back.state_dict().items())


@op()
def do_unmerge(run, out_before):
    unmerge_lora(run.model)
    assert not any(layer.merged for layer in run.layers())
    assert torch.allclose(run.out(), out_before, atol=1e-3)


@op()
def do_reset(run, out_before):
    reset_lora(run.model)
    assert all(not layer.lora_B.any() for layer in run.layers())


@op(data=DATA, steps=STEPS, lr=LR, batch_size=BATCH, eval_tasks=EVAL, extra=EXTRA, plus=Arg([False, True], []))
def do_train(run, out_before, data, steps, lr, batch_size, eval_tasks, extra, plus):
    frozen = {n: p.detach().clone() for n, p in run.model.named_parameters() if not p.requires_grad}
    groups = {"param_groups": loraplus_param_groups(run.model, lr=1e-3)} if plus and run.layers() else {}
    hist = train(run.model, _dataset(data), steps=steps, lr=lr, batch_size=batch_size, eval_tasks=eval_tasks,
                 **({"progress": False} | extra | groups))
    assert 1 <= len(hist.loss) <= steps and all(math.isfinite(x) for x in hist.loss)
    assert run.model.training
    for n, p in run.model.named_parameters():  # train() changes only what requires grad
        if n in frozen:
            assert torch.equal(p, frozen[n]), n


@op(path=PATH)
def do_save(run, out_before, path):
    path = run.workdir / path if isinstance(path, str) and path not in ("", ".") else path
    saved = save_adapter(run.model, path)
    assert Path(saved).is_file()
    run.saved.append(Path(saved))


@op(name=LOAD)
def do_load(run, out_before, name):
    path = {"saved": run.saved[-1] if run.saved else FILES["good"], "missing": run.workdir / "nope.safetensors"}.get(
        name, FILES.get(name, name))
    load_adapter(run.model, path)
    file = load_file(path)
    assert all(torch.equal(v, file[k]) for k, v in lora_state_dict(run.model).items())


@op(name=PEFT)
def do_import(run, out_before, name):
    names = import_peft(run.model, FILES.get(name, run.workdir / "nope" if name == "missing" else name))
    assert names and all(isinstance(run.model.get_submodule(n), LoRALinear) for n in names)


@op()
def do_export(run, out_before):
    folder = export_peft(run.model, run.workdir / "export")
    fresh = _copy(BASE)
    if not any(isinstance(m, QuantLinear) for m in run.model.modules()):
        import_peft(fresh, folder)  # what export_peft wrote, import_peft reads back
        with torch.no_grad():
            assert torch.allclose(fresh(IDX)[0], run.out(), atol=1e-4) or run.layers()[0].lora_dropout.training


@op(kind=KIND, block_size=BLOCK)
def do_quantize(run, out_before, kind, block_size):
    quantize_base(run.model, kind=kind, block_size=block_size)
    assert not any(isinstance(m, nn.Linear) for m in run.model.modules())


@op(lr=LRPLUS)
def do_loraplus(run, out_before, lr):
    groups = loraplus_param_groups(run.model, lr=lr)
    assert sum(len(g["params"]) for g in groups) == sum(p.requires_grad for p in run.model.parameters())


@op()
def do_count(run, out_before):
    count = count_parameters(run.model)
    assert 0 <= count.trainable <= count.total == sum(p.numel() for p in run.model.parameters())


@op(tasks=one_of(["rotate", ["copy", "sort"]], ["nope", [], 5, None]))
def do_evaluate(run, out_before, tasks):
    assert all(0.0 <= a <= 1.0 for a in evaluate(run.model, tasks).values())


@op()
def do_enter_disable(run, out_before):
    was = {id(layer): layer.disabled for layer in run.layers()}
    cm = disable_lora(run.model)
    cm.__enter__()
    run.blocks.append(("disable", cm, was))
    assert all(layer.disabled for layer in run.layers())


@op()
def do_nested_disable(run, out_before):
    """disable_lora inside disable_lora (inside whatever blocks are open): the outer block holds after the inner."""
    was = [layer.disabled for layer in run.layers()]
    with disable_lora(run.model):
        inside = run.out()
        with disable_lora(run.model):
            assert torch.equal(run.out(), inside)
        assert all(layer.disabled for layer in run.layers()) and torch.equal(run.out(), inside)
    assert [layer.disabled for layer in run.layers()] == was


@op(which=WHICH, n=Arg([1, 2], []))
def do_enter_mixed(run, out_before, which, n):
    paths = [FILES["good"], run.saved[-1] if run.saved else FILES["good"]][:n]
    types = [type(m) for m in run.model.modules()]
    cm = mixed_adapters(run.model, paths, which)
    cm.__enter__()
    run.blocks.append(("mixed", cm, (types, which)))


@op()
def do_exit(run, out_before):
    if not run.blocks:
        return
    kind, cm, was = run.blocks.pop()
    cm.__exit__(None, None, None)
    if kind == "disable":  # the inner block puts back exactly what it found
        assert {id(layer): layer.disabled for layer in run.layers()} == was
    else:
        assert [type(m) for m in run.model.modules()] == was[0]


STARTS = _starts()
OPS = [do_inject, do_inject, do_inject, do_merge, do_unmerge, do_reset, do_train, do_train, do_save, do_load,
       do_import, do_export, do_quantize, do_loraplus, do_count, do_evaluate, do_enter_disable, do_nested_disable, do_enter_mixed,
       do_exit, do_exit]


@settings(max_examples=int(os.environ.get("LORA_FUZZ_EXAMPLES", 120)), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None,
          phases=[Phase.generate] if os.environ.get("LORA_FUZZ_NO_SHRINK") else list(Phase))  # no shrink: faster checks
@given(data=st.data())
def test_random_call_sequences(data):
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as workdir:
        run = Run(Path(workdir), data.draw(st.sampled_from(sorted(STARTS)), label="start"))
        assert torch.isfinite(run.out()).all()  # every starting model computes finite outputs
        try:
            for _ in range(data.draw(st.integers(1, 8), label="calls")):
                run.call(data)
        finally:
            while run.blocks:
                run.blocks.pop()[1].__exit__(None, None, None)


@pytest.mark.parametrize("start", sorted(STARTS))
def test_every_invalid_value_is_refused_from_every_start(start, tmp_path):
    """The sweep beside the random sequences: every invalid value above, in every call that takes it, from every
    starting model, all other arguments valid: a lora_mini error, and the model bit-identical."""
    for fn in dict.fromkeys(OPS):
        valid = {name: arg.valid[0] for name, arg in fn.args.items()}
        for name, arg in fn.args.items():
            for value in arg.invalid:
                run = Run(tmp_path, start)
                before = full_snapshot(run.model)
                with pytest.raises(LoraMiniError):
                    fn(run, run.out(), **(valid | {name: value}))
                assert_full_same(before, full_snapshot(run.model))


def test_every_valid_call_from_every_start(tmp_path):
    """The sweep of states: each call with valid arguments, from each starting model (merged, DoRA at its edge
    cases, quantised, ...), inside no block and inside disable_lora: it works, or it is refused and changes nothing."""
    for start in STARTS:
        for fn in dict.fromkeys(OPS):
            for inside_disable in (False, True):
                run = Run(tmp_path, start)
                if inside_disable and not any(layer.merged for layer in run.layers()):
                    do_enter_disable(run, run.out())
                try:
                    run.apply(fn, {name: arg.valid[0] for name, arg in fn.args.items()})
                finally:
                    while run.blocks:
                        run.blocks.pop()[1].__exit__(None, None, None)


@pytest.mark.parametrize("model", [None, "model", {"q_proj": 1}])
def test_every_call_refuses_what_is_not_a_model(model):
    calls = [lambda m: inject_lora(m, ["q_proj"], r=4, alpha=8), merge_lora, unmerge_lora, reset_lora, count_parameters,
             lambda m: train(m, "rotate", steps=1), lambda m: evaluate(m, "rotate"), lambda m: save_adapter(m, "a"),
             lambda m: load_adapter(m, FILES["good"]), lambda m: export_peft(m, "x"), lambda m: import_peft(m, FILES["peft"]),
             quantize_base, lambda m: loraplus_param_groups(m, lr=1e-3), lambda m: disable_lora(m).__enter__(),
             lambda m: mixed_adapters(m, [FILES["good"]], [0]).__enter__()]
    for call in calls:
        with pytest.raises(LoraMiniError, match="torch.nn.Module"):
            call(model)


def test_the_fuzzer_covers_every_public_call():
    """Each public function that takes a model appears in some op above (so a new one must be added here)."""
    import lora_mini

    covered = {"inject_lora", "merge_lora", "unmerge_lora", "reset_lora", "train", "save_adapter", "load_adapter",
               "import_peft", "export_peft", "quantize_base", "loraplus_param_groups", "count_parameters", "evaluate",
               "disable_lora", "mixed_adapters"}
    source = Path(__file__).read_text()
    assert all(f"{name}(" in source for name in covered)
    assert covered <= set(lora_mini.__all__)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
