"""Shared variables holding a scipy.sparse matrix (Theano's shared() of a csc/csr value)."""

from __future__ import annotations

import scipy.sparse as sp

from theanine.compile.shared import SharedVariable
from theanine.sparse.type import FORMATS, SparseType, SparseVariable


class SparseSharedVariable(SparseVariable, SharedVariable):
    """A shared variable of a SparseType: the sparse operators, the shared storage."""

    def clone(self):
        """Cloning inside a compiled graph keeps the link to this variable's storage."""
        v = SparseVariable(self.type, name=self.name)
        v.tag["shared"] = self
        return v


def sparse_shared(value, name: str | None = None, strict: bool = False,
                  allow_downcast: bool | None = None, borrow: bool = False):
    """A shared variable holding csc or csr matrix `value` (copied unless borrow=True)."""
    if not sp.issparse(value) or value.format not in FORMATS:
        raise TypeError(f"shared(): a sparse value must be a csc or csr matrix, got "
                        f"{type(value).__name__}; convert it with .tocsr()")
    value = value if borrow else value.copy()
    return SparseSharedVariable(SparseType(value.format, value.dtype), value, name=name,
                                strict=strict, allow_downcast=allow_downcast)
