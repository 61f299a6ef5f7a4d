"""Loops: `scan` (Theano's signature and semantics), its shorthands `map`, `reduce`, `foldl`
and `foldr`, and `until` for while loops. The Scan op is in op.py, its gradient in grad.py."""

from theanine.scan_module.builder import scan, until
from theanine.scan_module.clone import clone
from theanine.scan_module.op import Scan
from theanine.scan_module.views import foldl, foldr, map, reduce

__all__ = ["Scan", "clone", "foldl", "foldr", "map", "reduce", "scan", "until"]
