"""Run-time configuration: `config.floatX`, `config.device`, `config.mode`, read from
THEANINE_FLAGS (or THEANO_FLAGS, for programs ported from Theano) and settable at run time."""

from __future__ import annotations

import os
from collections.abc import Callable


def _check_floatx(v: str) -> str:
    if v not in ("float16", "float32", "float64"):
        raise ValueError(f"config.floatX must be 'float16', 'float32' or 'float64', got {v!r}")
    return v


def _check_device(v: str) -> str:
    """Device names belong to backends: accepted if some registered backend accepts it."""
    from theanine.backend import check_device

    return check_device(v)


def _check_mode(v: str) -> str:
    """The mode names are theanine.compile.mode's."""
    from theanine.compile.mode import check_mode_name

    return check_mode_name(v)


# Checks that need the rest of theanine (the backends registered by plugins, the modes): a
# value THEANINE_FLAGS gives while theanine is still importing is checked at its first read.
_CHECKED_AT_FIRST_READ = frozenset({"device", "mode"})


def _check_bool(v) -> bool:
    if isinstance(v, str):
        if v.lower() in ("1", "true", "yes", "on"):
            return True
        if v.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean flag, got {v!r}")
    return bool(v)


def _check_choice(option: str, *choices: str) -> Callable[[str], str]:
    def check(v) -> str:
        if str(v) not in choices:
            raise ValueError(f"config.{option} must be one of {', '.join(map(repr, choices))}, "
                             f"got {v!r}")
        return str(v)

    return check


def _check_positive_int(v) -> int:
    n = int(v)
    if n <= 0:
        raise ValueError(f"expected a positive integer, got {v!r}")
    return n


def _check_positive_float(v) -> float:
    f = float(v)
    if f <= 0:
        raise ValueError(f"expected a positive number, got {v!r}")
    return f


class ConfigSection:
    """A group of typed settings under a dotted name (`config.warn.subtensor_merge_bug`), as
    Theano groups them; unknown names raise AttributeError."""

    def __init__(self, name: str, options: dict[str, tuple[object, Callable, str]]):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_values", {k: v[0] for k, v in options.items()})

    def __getattr__(self, name: str):
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise AttributeError(f"theanine.config.{self._name} has no option {name!r}; options: "
                             f"{', '.join(sorted(values))}")

    def __setattr__(self, name: str, value) -> None:
        if name not in self._options:
            raise AttributeError(f"theanine.config.{self._name} has no option {name!r}; "
                                 f"options: {', '.join(sorted(self._options))}")
        self._values[name] = self._options[name][1](value)

    def __repr__(self) -> str:
        return "\n".join(f"{self._name}.{k} = {v!r}" for k, v in self._values.items())


# Theano's grouped flags that ported programs set; they change nothing here (theanine has no
# subtensor-merge bug to warn about; scan frees its step buffers itself) but must be settable.
_SECTIONS: dict[str, dict[str, tuple[object, Callable, str]]] = {
    "warn": {
        "subtensor_merge_bug": (False, _check_bool, "Theano's warning switch; ignored"),
        "sum_div_dimshuffle_bug": (False, _check_bool, "Theano's warning switch; ignored"),
        "sum_sum_bug": (False, _check_bool, "Theano's warning switch; ignored"),
    },
    "scan": {
        "allow_gc": (True, _check_bool, "Theano's scan buffer switch; ignored"),
    },
    # theanine.distributed's collectives
    "distributed": {
        "timeout": (120.0, _check_positive_float, "seconds a collective waits for every rank "
                    "before it raises DistributedError (a rank died or is stuck)"),
        "bucket_mb": (25.0, _check_positive_float, "MiB of gradients fused into one all-reduce "
                      "message (PyTorch DDP's bucket_cap_mb)"),
    },
    # what config.profile prints at exit (theanine.compile.profiling)
    "profiling": {
        "n_apply": (20, _check_positive_int, "Apply nodes printed per profile"),
        "n_ops": (20, _check_positive_int, "classes and ops printed per profile"),
        "destination": ("stderr", str, "'stderr', 'stdout' or a file the profiles are "
                        "written to at exit"),
    },
}


class Config:
    """Typed settings; unknown names raise AttributeError instead of silently doing nothing."""

    _options: dict[str, tuple[object, Callable, str]] = {
        "floatX": ("float64", _check_floatx, "dtype of T.scalar()/T.matrix() and friends"),
        "device": ("cpu", _check_device, "where compiled functions run"),
        "mode": ("FAST_RUN", _check_mode, "default compile mode"),
        "compute_test_value": ("off", _check_choice("compute_test_value", "off", "ignore",
                                                    "warn", "raise", "pdb"),
                               "compute each new node's value from its inputs' "
                               "tag.test_value as the graph is built ('pdb' acts as 'raise')"),
        "on_unused_input": ("raise", _check_choice("on_unused_input", "raise", "warn", "ignore"),
                            "function()'s default for an input no output uses"),
        "exception_verbosity": ("low", _check_choice("exception_verbosity", "low", "high"),
                                "kept for Theano compatibility; errors always name the user's "
                                "line"),
        "allow_gc": (True, _check_bool, "kept for Theano compatibility; ignored"),
        "openmp": (False, _check_bool, "kept for Theano compatibility; ignored"),
        "rewrite_time_budget": (10.0, _check_positive_float,
                                "seconds one rewrite pass may take before it stops"),
        "debug_rtol": (1e-5, _check_positive_float, "DebugMode relative tolerance (float64)"),
        "debug_check_nan": (True, _check_bool, "DebugMode raises on NaN/Inf outputs"),
        "profile": (False, _check_bool, "profile every compiled function (f.profile) and "
                    "print each profile's summary at exit"),
        "profile_optimizer": (False, _check_bool, "kept for Theano compatibility: profiles "
                              "always time each rewrite pass and rewrite"),
        "profile_memory": (False, _check_bool, "kept for Theano compatibility; profiles record "
                           "no memory"),
    }

    def __init__(self):
        object.__setattr__(self, "_values", {k: v[0] for k, v in self._options.items()})
        object.__setattr__(self, "_unchecked", {})  # option -> the flags variable that set it
        object.__setattr__(self, "_sections",
                           {k: ConfigSection(k, v) for k, v in _SECTIONS.items()})

    def __getattr__(self, name: str):
        sections = object.__getattribute__(self, "_sections")
        if name in sections:
            return sections[name]
        values = object.__getattribute__(self, "_values")
        if name in values:
            if name in self._unchecked:
                self._check_flag(name)
            return values[name]
        raise AttributeError(f"theanine.config has no option {name!r}; options: "
                             f"{', '.join(sorted(values))}")

    def __setattr__(self, name: str, value) -> None:
        if name not in self._options:
            raise AttributeError(f"theanine.config has no option {name!r}; options: "
                                 f"{', '.join(sorted(self._options))}")
        self._values[name] = self._options[name][1](value)
        self._unchecked.pop(name, None)

    def _check_flag(self, name: str) -> None:
        """Check a value set by a flags variable, naming the variable if it is wrong."""
        try:
            self._values[name] = self._options[name][1](self._values[name])
        except ValueError as e:
            raise ValueError(f"{self._unchecked[name]}: {e}") from None
        self._unchecked.pop(name, None)

    def parse_flags(self, flags: str, source: str) -> None:
        """Apply 'name=value,name=value' settings, naming `source` in any error."""
        for item in filter(None, (p.strip() for p in flags.split(","))):
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"{source}: expected name=value, got {item!r}")
            name, value = name.strip(), value.strip()
            if name in _CHECKED_AT_FIRST_READ:
                self._values[name] = value
                self._unchecked[name] = source
                continue
            try:
                section, _, option = name.rpartition(".")
                setattr(self._sections[section] if section in self._sections else self,
                        option if section in self._sections else name, value)
            except (AttributeError, ValueError) as e:
                raise ValueError(f"{source}: {e}") from None

    def __repr__(self) -> str:
        return "\n".join([f"{k} = {v!r}" for k, v in self._values.items()]
                         + [repr(s) for s in self._sections.values()])


config = Config()
for _var in ("THEANO_FLAGS", "THEANINE_FLAGS"):
    if os.environ.get(_var):
        config.parse_flags(os.environ[_var], _var)
