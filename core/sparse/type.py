"""SparseType and SparseVariable: a symbolic 2-d scipy.sparse matrix (Theano's theano.sparse).

A sparse value is a scipy.sparse matrix in one format, 'csc' or 'csr', and one dtype; like
SciPy, only matrices (two dimensions) exist. The type's `filter` is what function() calls on a
call value, so a wrong format or a dense array is refused there, naming the input."""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Constant, Variable
from theanine.tensor.convert import lossy_values
from theanine.tensor.type import normalize_dtype

FORMATS = ("csc", "csr")


def make(format: str, *args, **kwargs):
    """scipy.sparse's csc_matrix or csr_matrix (scipy is imported when first needed, so that
    `import theanine`, whose C backend registers the sparse ops, does not pay for it)."""
    import scipy.sparse

    return getattr(scipy.sparse, f"{format}_matrix")(*args, **kwargs)


def issparse(x) -> bool:
    """True for a scipy.sparse matrix (without importing scipy for anything else)."""
    if not type(x).__module__.startswith("scipy.sparse"):
        return False
    import scipy.sparse

    return scipy.sparse.issparse(x)


# the dtypes Theano's sparse package accepts (`sparse.all_dtypes`)
all_dtypes = frozenset(("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                        "uint64", "float32", "float64", "complex64", "complex128"))


class SparseType:
    """The type of a 2-d sparse matrix: a format ('csc' or 'csr') and a dtype."""

    ndim = 2
    shape = (None, None)
    broadcastable = (False, False)

    def __init__(self, format: str, dtype):
        if format not in FORMATS:
            raise ValueError(f"SparseType: format must be one of {FORMATS}, got {format!r}")
        self.format = format
        self.dtype = normalize_dtype(dtype)
        if self.dtype not in all_dtypes:
            raise TypeError(f"SparseType: dtype {self.dtype} is not a sparse dtype; expected "
                            f"one of {', '.join(sorted(all_dtypes))}")
        self.numpy_dtype = np.dtype(self.dtype)

    def __eq__(self, other) -> bool:
        return (type(other) is SparseType and other.format == self.format
                and other.dtype == self.dtype)

    def __hash__(self) -> int:
        return hash((SparseType, self.format, self.dtype))

    def __reduce__(self):
        return SparseType, (self.format, self.dtype)

    def __str__(self) -> str:
        return f"Sparse[{self.dtype}, {self.format}]"

    __repr__ = __str__

    def __call__(self, name: str | None = None) -> SparseVariable:
        return SparseVariable(self, name=name)

    def clone(self, dtype=None, format=None) -> SparseType:
        return SparseType(format or self.format, dtype or self.dtype)

    def is_compatible(self, other) -> bool:
        return self == other

    def shape_matches(self, shape) -> bool:
        return len(shape) == 2

    def filter(self, value, name: str = "input", allow_downcast: bool = False):
        """A call value as a scipy matrix of this format and dtype, or a TypeError naming
        `name`. Another dtype converts when no value changes (as for dense inputs), or with
        `allow_downcast`; another format or a dense array is refused, as Theano does."""
        if not issparse(value):
            raise TypeError(f"{name}: expected a scipy.sparse {self.format} matrix ({self}), "
                            f"got {type(value).__name__}")
        if value.format != self.format:
            raise TypeError(f"{name}: expected a scipy.sparse {self.format} matrix ({self}), "
                            f"got a {value.format} matrix; convert it with .to{self.format}()")
        if value.dtype == self.numpy_dtype:
            return value
        lost = None if allow_downcast else lossy_values(value.data, self.numpy_dtype)
        if lost is not None:
            raise TypeError(f"{name}: expected dtype {self.dtype}, got a sparse matrix of dtype "
                            f"{value.dtype} {lost}, whose values would change when converted. "
                            "Cast it yourself, or compile with allow_input_downcast=True.")
        if value.dtype.kind == "c" and self.numpy_dtype.kind != "c":
            value = value.real  # (a downcast drops the imaginary part, as for dense inputs)
        with np.errstate(all="ignore"):
            return value.astype(self.numpy_dtype)


class SparseVariable(Variable):
    """A symbolic sparse matrix; its operators build theanine.sparse ops (Theano's)."""

    # a tensor's +, - and * defer to this variable's reflected operators (dense + sparse)
    handles_tensor_operands = True

    @property
    def dtype(self) -> str:
        return self.type.dtype

    @property
    def format(self) -> str:
        return self.type.format

    ndim = 2

    @property
    def shape(self):
        """The symbolic (rows, columns), an int32 vector (Theano's x.shape)."""
        from theanine.sparse.ops import csm_shape

        return csm_shape(self)

    @property
    def T(self):
        from theanine.sparse.ops import transpose

        return transpose(self)

    def toarray(self):
        from theanine.sparse.ops import dense_from_sparse

        return dense_from_sparse(self)

    def __add__(self, other):
        from theanine.sparse.ops import add

        return add(self, other)

    __radd__ = __add__

    def __mul__(self, other):
        from theanine.sparse.ops import mul

        return mul(self, other)

    __rmul__ = __mul__

    def __neg__(self):
        from theanine.sparse.ops import neg

        return neg(self)

    def __sub__(self, other):
        from theanine.sparse.ops import sub

        return sub(self, other)

    def __rsub__(self, other):
        from theanine.sparse.ops import add, neg

        return add(other, neg(self))


class SparseConstant(Constant, SparseVariable):
    """A sparse matrix known when the graph is built."""

    def signature(self) -> tuple:
        d = self.data
        return (self.type, d.shape, d.data.tobytes(), d.indices.tobytes(), d.indptr.tobytes())


def matrix(format: str, name: str | None = None, dtype=None) -> SparseVariable:
    """A symbolic sparse matrix of `format` ('csc' or 'csr') and `dtype` (default floatX)."""
    return SparseType(format, "floatX" if dtype is None else dtype)(name)


def csc_matrix(name: str | None = None, dtype=None) -> SparseVariable:
    """Theano's sparse.csc_matrix(name, dtype): a symbolic csc matrix."""
    return matrix("csc", name, dtype)


def csr_matrix(name: str | None = None, dtype=None) -> SparseVariable:
    """Theano's sparse.csr_matrix(name, dtype): a symbolic csr matrix."""
    return matrix("csr", name, dtype)


def as_sparse_variable(x, name: str | None = None) -> SparseVariable:
    """`x` as a SparseVariable: sparse variables pass through, scipy csc/csr matrices become
    constants; anything else (a dense tensor) is refused naming it."""
    if isinstance(x, SparseVariable):
        return x
    if isinstance(x, Variable):
        raise TypeError(f"expected a sparse variable, got {x} of type {x.type}")
    if issparse(x) and x.format in FORMATS:
        return SparseConstant(SparseType(x.format, x.dtype), x, name=name)
    raise TypeError(f"expected a sparse variable or a scipy csc/csr matrix, got "
                    f"{type(x).__name__}")


as_sparse = as_sparse_variable


def as_sparse_or_tensor_variable(x, name: str | None = None):
    """`x` as a SparseVariable when it is sparse (symbolic or scipy), else as a tensor."""
    from theanine.tensor.basic import as_tensor_variable

    if isinstance(x, SparseVariable) or issparse(x):
        return as_sparse_variable(x, name)
    return as_tensor_variable(x, name)


def is_sparse(x) -> bool:
    """True for a SparseVariable."""
    return isinstance(x, SparseVariable)
