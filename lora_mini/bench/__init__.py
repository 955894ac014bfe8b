"""Does LoRA train faster, use less memory and add no inference latency, here? And is lora_mini as fast as PEFT?

    python -m lora_mini.bench                          # everything, about 4-5 minutes on 2 cores
    python -m lora_mini.bench --quick                  # a small run in under a minute: proves the command works
    python -m lora_mini.bench --json bench.json --chart docs/bench.png --threads 1
    python -m lora_mini.bench --notebooks path/to/notebooks   # default: notebooks/ in the current directory

One run, one machine, five sections, each figure a ratio of two things measured side by side,
one module each:

1. ``training``: the step of LoRA vs full fine-tuning vs the floor (frozen forward + input-gradient backward)
2. ``peak_memory``: the accounting (``lora_mini.memory.account_peak``) next to the measured process peak
3. ``inference``: merged and unmerged LoRA vs the base model
4. ``peft_peers``: ``LoRALinear`` vs PEFT's and loralib's LoRA ``Linear``, forward + backward
5. ``course``: each notebook's wall time and kernel peak RSS on one CPU thread (``lora_mini.notebook_runner``,
   which ``scripts/execute_notebooks.py`` uses too), and ``load_base()``'s time

The speed and memory targets of the project live here, as the checks of these sections, not in
the unit tests (whose machine may be busy). Shared parts: ``common`` (the configuration and the
``Check`` rows), ``timing`` (interleaved rounds), ``flops`` (the predictions), ``report`` and
``chart`` (the output), ``command`` (the command line).

Timing protocol: warm-up calls first, then ``repeats`` rounds; in each round every contender runs
once (a short call: a loop of calls lasting at least ``min_sample_s``), in an order rotated from
round to round. A time is the median over rounds. A ratio is the median over rounds of that
round's ratio, whose two parts ran seconds apart, so a busy neighbour slows both.
Predictions count matmul FLOPs only (:func:`matmul_flops`), 2 per multiply-add.

The allocator: glibc's malloc (Linux) returns the top of its heap to the OS whenever enough of it
is free, and the next training step page-faults it back in, thousands of faults per step, more
for one contender than another by the luck of where its blocks fall. So the training step is
timed twice: first with the allocator's defaults (reported, with page faults per step), then,
like every later timing, with freed memory kept for reuse (:func:`keep_freed_memory`, as the
jemalloc and tcmalloc allocators do); the targets are checked on the second.
``--default-malloc`` times everything with the defaults instead.
"""
from .command import main, run
from .common import MEDIUM_TOY, QUICK, QUICK_TOY, BenchConfig, Check
from .flops import Flops, matmul_flops
from .timing import Samples, interleaved, keep_freed_memory
from .training import floor_model, floor_step

__all__ = ["BenchConfig", "Check", "Flops", "MEDIUM_TOY", "QUICK", "QUICK_TOY", "Samples", "floor_model", "floor_step",
           "interleaved", "keep_freed_memory", "main", "matmul_flops", "run"]
