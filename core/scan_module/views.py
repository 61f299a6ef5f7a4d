"""Theano's shorthands over scan: `map` (no recurrence) and `reduce`/`foldl`/`foldr` (only the
last step's values)."""

from __future__ import annotations

from collections.abc import Callable

from theanine.scan_module.builder import scan


def map(fn: Callable, sequences, non_sequences=None, truncate_gradient: int = -1,  # noqa: A001
        go_backwards: bool = False, mode=None, name: str | None = None):
    """fn applied to each step of `sequences`: scan without recurrent outputs."""
    return scan(fn, sequences=sequences, outputs_info=None, non_sequences=non_sequences,
                truncate_gradient=truncate_gradient, go_backwards=go_backwards, mode=mode,
                name=name)


def reduce(fn: Callable, sequences, outputs_info, non_sequences=None,  # noqa: A001
           go_backwards: bool = False, mode=None, name: str | None = None):
    """The values of scan's outputs after its last step (the save_mem rewrite keeps only
    those while the loop runs)."""
    outputs, updates = scan(fn, sequences=sequences, outputs_info=outputs_info,
                            non_sequences=non_sequences, go_backwards=go_backwards, mode=mode,
                            name=name, return_list=True)
    last = [o[-1] for o in outputs]
    return (last[0] if len(last) == 1 else last), updates


def foldl(fn: Callable, sequences, outputs_info, non_sequences=None, mode=None,
          name: str | None = None):
    """reduce from the first step to the last."""
    return reduce(fn, sequences, outputs_info, non_sequences, False, mode, name)


def foldr(fn: Callable, sequences, outputs_info, non_sequences=None, mode=None,
          name: str | None = None):
    """reduce from the last step to the first."""
    return reduce(fn, sequences, outputs_info, non_sequences, True, mode, name)
