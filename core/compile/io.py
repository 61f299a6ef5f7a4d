"""`In` (alias `Param`): a function input with a name, a default value (or a state kept
between calls, with an update) and conversion rules; `Out`: an output's options; and
`as_in`, Theano's tuple shortcuts for inputs."""

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
                 mutable: bool = False, update: Variable | None = None,
                 implicit: bool | None = None, autoname: bool = True, strict: bool = False):
        if not isinstance(variable, Variable):
            raise TypeError(f"In() expects a symbolic variable, got {type(variable).__name__}")
        if value is not self._NO_DEFAULT and default is not self._NO_DEFAULT:
            raise TypeError("In(): give value= or default=, not both")
        if update is not None and value is self._NO_DEFAULT and default is self._NO_DEFAULT:
            raise TypeError(f"In({variable}, update=...): an input with an update needs its "
                            "initial value= (the state it starts from)")
        # `update`: the input keeps a state between calls, its value when the caller leaves it
        # out, replaced after every call by `update` (Theano's stateful inputs); `implicit`
        # (the caller may not pass it), `autoname` and `strict` are accepted for Theano
        self.update = update
        self.implicit = bool(implicit)
        self.variable = variable
        self.name = name if name is not None else variable.name if autoname else None
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


def as_in(item, k: int) -> In:
    """Input `k` of function() as an In: a Variable, an In, or one of Theano's shortcuts
    (name, r), (r, value), ((r, update), value), (name, r, value), (name, (r, update), value)."""
    if isinstance(item, In):
        return item
    if isinstance(item, Variable):
        return In(item)
    if isinstance(item, tuple) and 2 <= len(item) <= 3:
        name = item[0] if isinstance(item[0], str) else None
        rest = item[1:] if name is not None else item
        target = rest[0]
        update = None
        if isinstance(target, tuple) and len(target) == 2:
            target, update = target
        if isinstance(target, Variable) and len(rest) <= 2:
            if len(rest) == 1:
                return In(target, name=name)
            return In(target, name=name, value=rest[1], update=update)
    raise TypeError(f"function(): input {k} must be a symbolic variable, In(...) or one of "
                    f"Theano's tuples ((name, var), (var, value), ((var, update), value), "
                    f"(name, var, value)), got {type(item).__name__} {item!r}")
