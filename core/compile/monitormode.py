"""Theano's module name for MonitorMode and detect_nan (`theano.compile.monitormode`); they
live in theanine.compile.monitor."""

from theanine.compile.monitor import MonitorMode, detect_nan

__all__ = ["MonitorMode", "detect_nan"]
