"""Compiling graphs into callables: function, shared variables, In/Out/Param, modes."""

from theanine.compile.debugmode import DebugMode, DebugModeError
from theanine.compile.function import Function, UnusedInputError, function
from theanine.compile.io import In, Out, Param
from theanine.compile.mode import Mode, get_mode
from theanine.compile.monitor import MonitorMode, NanGuardMode
from theanine.compile.shared import SharedVariable, shared
from theanine.graph.basic import MissingInputError

__all__ = ["DebugMode", "DebugModeError", "Function", "In", "MissingInputError", "Mode",
           "MonitorMode", "NanGuardMode", "Out", "Param", "SharedVariable", "UnusedInputError",
           "function", "get_mode", "shared"]
