"""Theano's module name for NanGuardMode (`from theano.compile.nanguardmode import
NanGuardMode`); it lives in theanine.compile.monitor."""

from theanine.compile.monitor import NanGuardError, NanGuardMode

__all__ = ["NanGuardMode", "NanGuardError"]
