"""The errors lora_mini raises on purpose: one family a learner can catch.

Every message names the argument, the value it got and the fix. A call that raises one of
these has changed nothing: the model, its files and its flags are exactly as before.

    try:
        inject_lora(model, ["q_proj"], r=0, alpha=8)
    except LoraMiniError as e:      # or ValueError: each class is also the built-in it refines
        print(e)
"""
from __future__ import annotations


class LoraMiniError(Exception):
    """Base of every error lora_mini raises on purpose."""


class LoraValueError(LoraMiniError, ValueError):
    """An argument of the right type with a value that can't work (r=0, lr=inf, an unknown task)."""


class LoraTypeError(LoraMiniError, TypeError):
    """An argument of the wrong type (a string where a number goes, a module that is not a Linear)."""


class AdapterFileError(LoraMiniError, ValueError):
    """An adapter file or folder (or a base checkpoint) that is missing, corrupt, or does not fit this model."""


class LoraStateError(LoraMiniError, RuntimeError, ValueError):
    """A call that does not fit the model's current state (training while merged: unmerge first).

    Also a ValueError, as these errors were before they had their own class, so older
    ``except ValueError`` code still catches them."""
