"""Compile modes: a rewrite query (which rewrites run, chosen by tags as in Theano) and whether
results are checked (DebugMode). The mode names are checked here and nowhere else."""

from __future__ import annotations

from theanine.config import config
from theanine.rewrite.query import RewriteQuery, as_query

# mode name -> (predefined rewrite query, debug)
_MODES = {"FAST_RUN": ("FAST_RUN", False), "FAST_COMPILE": ("FAST_COMPILE", False),
          "DebugMode": ("FAST_RUN", True), "DEBUG_MODE": ("FAST_RUN", True)}


# Theano's linkers: how its compiled graphs ran nodes. Every backend here runs a graph as one
# program whose ifelse is lazy (as the 'vm' and 'cvm' linkers made it), so a linker changes
# nothing and is accepted for ported programs; the backend is chosen by `backend=`/device.
LINKERS = ("vm", "cvm", "vm_nogc", "cvm_nogc", "py", "c", "c|py", "c|py_nogc")
# Theano's optimizer names -> the rewrite queries
OPTIMIZERS = {"fast_run": "FAST_RUN", "fast_compile": "FAST_COMPILE", "None": "NONE", None: "NONE",
              "o4": "FAST_RUN", "merge": "FAST_COMPILE"}


class Mode:
    """A compile mode: `query` selects the rewrites ('FAST_RUN', 'FAST_COMPILE', 'NONE' or a
    RewriteQuery; Theano's `optimizer=` names them too); `debug` checks every node's result
    (NaN/Inf, type) and the rewritten graph against the un-rewritten reference. `including`,
    `excluding` and `requiring` return new modes, as in Theano:
    `get_mode("FAST_RUN").excluding("fusion")`."""

    def __init__(self, rewrites: str | RewriteQuery = "FAST_RUN", debug: bool = False,
                 name: str | None = None, *, linker: str | None = None,
                 optimizer: str | RewriteQuery | None = "default"):
        if linker is not None and linker not in LINKERS:
            raise ValueError(f"Mode(linker={linker!r}): expected one of {', '.join(LINKERS)}")
        if optimizer != "default":  # Theano's name for the rewrites
            rewrites = OPTIMIZERS.get(optimizer, optimizer) if not isinstance(
                optimizer, RewriteQuery) else optimizer
        self.linker = linker
        self.query = as_query(rewrites, "Mode(rewrites=...)")
        self.debug = debug
        default = rewrites if isinstance(rewrites, str) else str(rewrites)
        self.name = name or ("DebugMode" if debug else default)

    def executor(self, fgraph):
        """A run function replacing the backend's compiled one (None: compile as usual); the
        monitoring modes (theanine.compile.monitor) run the reference node by node."""
        return None

    def including(self, *tags: str) -> Mode:
        """This mode, also running the rewrites with any of `tags`."""
        return self._derived(self.query.including(*tags), "including", tags)

    def excluding(self, *tags: str) -> Mode:
        """This mode without the rewrites (or lowering steps, 'fusion') with any of `tags`."""
        return self._derived(self.query.excluding(*tags), "excluding", tags)

    def requiring(self, *tags: str) -> Mode:
        """This mode, running only the rewrites that have all of `tags`."""
        return self._derived(self.query.requiring(*tags), "requiring", tags)

    def _derived(self, query: RewriteQuery, how: str, tags: tuple[str, ...]) -> Mode:
        return Mode(query, self.debug, f"{self.name}.{how}({', '.join(map(repr, tags))})")

    def __repr__(self) -> str:
        return f"Mode({self.name})"


def check_mode_name(name: str) -> str:
    """`name` if it names a mode (config.mode's check), else a ValueError listing them."""
    if name not in _MODES:
        raise ValueError(f"unknown mode {name!r}; expected one of {', '.join(_MODES)}, or a "
                         "theanine.Mode")
    return name


def get_mode(mode: Mode | str | None) -> Mode:
    """Turn None / a mode name / a Mode into a Mode (None means config.mode)."""
    if isinstance(mode, Mode):
        return mode
    name = check_mode_name(config.mode if mode is None else mode)
    rewrites, debug = _MODES[name]
    return Mode(rewrites, debug=debug, name=name)
