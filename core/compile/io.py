"""`In` (alias `Param`): a function input with a name, a default value and conversion rules."""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Variable


class _NoDefault:
    """The marker of an input without a default; it pickles as a reference to the one marker,
    so a loaded function's inputs still have no default."""

    def __reduce__(self):
        return "NO_DEFAULT"

    def __repr__(self) -> str:
        return "NO_DEFAULT"


NO_DEFAULT = _NoDefault()


class In:
    """Describe one input of `function`: the variable, the keyword name it can be given by,
    a default value used when the caller leaves it out, and whether lossy conversion is ok.

    `mutable` is accepted for Theano compatibility: compiled functions never modify their inputs,
    so both settings behave the same."""

    _NO_DEFAULT = NO_DEFAULT

    def __init__(self, variable: Variable, name: str | None = None, value=_NO_DEFAULT,
                 default=_NO_DEFAULT, borrow: bool = False, allow_downcast: bool | None = None,
                 mutable: bool = False):
        if not isinstance(variable, Variable):
            raise TypeError(f"In() expects a symbolic variable, got {type(variable).__name__}")
        if value is not self._NO_DEFAULT and default is not self._NO_DEFAULT:
            raise TypeError("In(): give value= or default=, not both")
        self.variable = variable
        self.name = name if name is not None else variable.name
        default = default if default is not self._NO_DEFAULT else value
        # a private copy: changing the caller's array later must not change the default
        self.default = default.copy() if isinstance(default, np.ndarray) else default
        self.borrow = borrow
        self.allow_downcast = allow_downcast
        self.mutable = mutable

    @property
    def has_default(self) -> bool:
        return self.default is not self._NO_DEFAULT


Param = In


class Out:
    """Describe one output of `function` (Theano's Out): the variable, and `borrow`, which
    allows returning memory the function may reuse. Outputs here are always new arrays, so
    both settings return the same thing."""

    def __init__(self, variable: Variable, borrow: bool = False):
        if not isinstance(variable, Variable):
            raise TypeError(f"Out() expects a symbolic variable, got {type(variable).__name__}")
        self.variable = variable
        self.borrow = borrow
