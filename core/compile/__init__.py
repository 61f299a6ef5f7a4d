"""Compiling graphs into callables: function, shared variables, In/Out/Param, modes and the
profiler (ProfileStats)."""

from theanine.compile import profiling
from theanine.compile.debugmode import DebugMode, DebugModeError
from theanine.compile.function import Function, UnusedInputError, function
from theanine.compile.io import In, Out, Param
from theanine.compile.mode import Mode, get_mode
from theanine.compile.monitor import MonitorMode, NanGuardMode
from theanine.compile.profiling import ProfileStats
from theanine.compile.shared import SharedVariable, shared
from theanine.graph.basic import MissingInputError

__all__ = ["DebugMode", "DebugModeError", "Function", "In", "MissingInputError", "Mode",
           "MonitorMode", "NanGuardMode", "Out", "Param", "ProfileStats", "SharedVariable",
           "UnusedInputError", "function", "get_mode", "profiling", "shared"]
