"""The sparse ops (Theano's theano.sparse), each defined by its scipy.sparse implementation.

Structured ops act on the stored entries only and give structured gradients: the gradient of
a sparse input is sparse, with that input's pattern. Elementwise structured functions
(`structured_sqrt`, ...) are graphs: the matrix's data vector goes through the tensor function
and `CSM` rebuilds the matrix on the same pattern, so their gradients come from the tensor ops.
"""

from __future__ import annotations

import numpy as np

from theanine.graph.basic import Apply, Op
from theanine.sparse.type import (
    SparseType,
    SparseVariable,
    as_sparse_or_tensor_variable,
    as_sparse_variable,
    issparse,
    make,
)
from theanine.tensor.basic import as_tensor_variable
from theanine.tensor.type import TensorType


def _dense(x, ndim: int | None = None, what: str = "operand"):
    """`x` as a tensor variable, refusing a sparse one with a message naming `what`."""
    if isinstance(x, SparseVariable) or issparse(x):
        raise TypeError(f"{what}: expected a dense tensor, got the sparse {x}")
    v = as_tensor_variable(x)
    if ndim is not None and v.ndim != ndim:
        raise TypeError(f"{what}: expected a {ndim}-d tensor, got {v} with {v.ndim} dimensions")
    return v


def _sparse(x, what: str) -> SparseVariable:
    """`x` as a sparse variable, refusing a dense one with a message naming `what`."""
    try:
        return as_sparse_variable(x)
    except TypeError as e:
        raise TypeError(f"{what}: {e}") from None


def _upcast(*dtypes) -> str:
    return np.result_type(*[np.dtype(d) for d in dtypes]).name


def _check_shapes(op, a, b) -> None:
    """Raise a ValueError naming `op` when the two operands' shapes disagree."""
    if a.shape != b.shape:
        raise ValueError(f"{op}: the operands' shapes differ: {a.shape} and {b.shape}")


class DenseFromSparse(Op):
    """The dense ndarray of a sparse matrix. `sparse_grad`: its gradient keeps only the
    entries the matrix stores (Theano's default), else it is the whole dense gradient."""

    __props__ = ("sparse_grad",)

    def __init__(self, sparse_grad: bool = True):
        self.sparse_grad = sparse_grad

    def make_node(self, x):
        x = _sparse(x, "dense_from_sparse")
        return Apply(self, [x], [TensorType(x.dtype, (None, None))()])

    def perform(self, node, inputs):
        return (inputs[0].toarray(),)

    def pullback(self, node, inputs, outputs, output_grads):
        (x,), (gz,) = inputs, output_grads
        if self.sparse_grad:
            return [mask(gz, x)]
        return [SparseFromDense(x.format)(gz)]

    def infer_shape(self, node, input_shapes):
        return [_shape_of(node.inputs[0])]


class SparseFromDense(Op):
    """A dense matrix stored as a sparse one of `format` (its zeros are not stored)."""

    __props__ = ("format",)

    def __init__(self, format: str):
        self.format = format

    def make_node(self, x):
        x = _dense(x, 2, f"{self.format}_from_dense")
        return Apply(self, [x], [SparseType(self.format, x.dtype)()])

    def perform(self, node, inputs):
        return (make(self.format, inputs[0]),)

    def pullback(self, node, inputs, outputs, output_grads):
        return [dense_from_sparse(output_grads[0])]


class CSMProperties(Op):
    """A sparse matrix's data, indices, indptr (int32) and shape (an int32 vector of 2)."""

    def make_node(self, x):
        x = _sparse(x, "csm_properties")
        outs = [TensorType(x.dtype, (None,))(), TensorType("int32", (None,))(),
                TensorType("int32", (None,))(), TensorType("int32", (2,))()]
        return Apply(self, [x], outs)

    def perform(self, node, inputs):
        x = inputs[0]
        return (x.data.copy(), x.indices.astype(np.int32), x.indptr.astype(np.int32),
                np.asarray(x.shape, dtype=np.int32))

    def pullback(self, node, inputs, outputs, output_grads):
        x = inputs[0]
        g = output_grads[0]
        if g is None:
            return [None]
        return [CSM(x.format)(g, *outputs[1:])]

    def connection_pattern(self, node):
        return [[True, False, False, False]]


class CSM(Op):
    """A sparse matrix of `format` from its data, indices, indptr and shape (Theano's
    CSM/CSR/CSC); the pattern given is kept as it is, explicit zeros included."""

    __props__ = ("format",)

    def __init__(self, format: str):
        self.format = format

    def make_node(self, data, indices, indptr, shape):
        data = _dense(data, 1, "CSM data")
        ints = [_dense(v, 1, f"CSM {n}") for v, n in
                zip((indices, indptr, shape), ("indices", "indptr", "shape"))]
        for v, n in zip(ints, ("indices", "indptr", "shape")):
            if not v.dtype.startswith(("int", "uint")):
                raise TypeError(f"CSM {n}: expected integers, got {v} of dtype {v.dtype}")
        return Apply(self, [data, *ints], [SparseType(self.format, data.dtype)()])

    def perform(self, node, inputs):
        data, indices, indptr, shape = inputs
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2:
            raise ValueError(f"CSM: shape must have 2 entries, got {shape}")
        if len(data) != len(indices):
            raise ValueError(f"CSM: data has {len(data)} entries but indices has "
                             f"{len(indices)}")
        return (make(self.format, (data.copy(), indices.copy(), indptr.copy()), shape),)

    def pullback(self, node, inputs, outputs, output_grads):
        data, indices, indptr, shape = inputs
        pattern = CSM(self.format)(data, indices, indptr, shape)
        return [ValuesAt()(pattern, output_grads[0]), None, None, None]

    def connection_pattern(self, node):
        return [[True], [False], [False], [False]]


class ValuesAt(Op):
    """The values of `z` (sparse or dense, of the same shape) at the entries sparse matrix
    `x` stores, in x's storage order: a vector as long as x's data. The gradient machinery's
    tool for keeping a gradient to x's pattern."""

    def make_node(self, x, z):
        x = _sparse(x, "ValuesAt pattern")
        z = as_sparse_or_tensor_variable(z)
        if z.ndim != 2:
            raise TypeError(f"ValuesAt: expected a matrix, got {z} with {z.ndim} dimensions")
        return Apply(self, [x, z], [TensorType(z.dtype, (None,))()])

    def perform(self, node, inputs):
        x, z = inputs
        _check_shapes("ValuesAt", x, z)
        coo = x.tocoo()
        if issparse(z):
            return (np.asarray(z.tocsr()[coo.row, coo.col]).ravel(),)
        return (np.asarray(z)[coo.row, coo.col],)

    def pullback(self, node, inputs, outputs, output_grads):
        x, z = inputs
        _, indices, indptr, shape = csm_properties(x)
        g = CSM(x.format)(output_grads[0], indices, indptr, shape)
        return [None, g if isinstance(z, SparseVariable) else dense_from_sparse(g)]

    def connection_pattern(self, node):
        return [[False], [True]]


class ToFormat(Op):
    """A sparse matrix converted to `format` (same values)."""

    __props__ = ("format",)

    def __init__(self, format: str):
        self.format = format

    def make_node(self, x):
        x = _sparse(x, f"{self.format}_from_sparse")
        return Apply(self, [x], [SparseType(self.format, x.dtype)()])

    def perform(self, node, inputs):
        return (inputs[0].asformat(self.format, copy=True),)

    def pullback(self, node, inputs, outputs, output_grads):
        return [to_format(output_grads[0], inputs[0].format)]


class Transpose(Op):
    """The transpose: a csc matrix's is csr and a csr's csc (the same arrays, read across)."""

    def make_node(self, x):
        x = _sparse(x, "transpose")
        fmt = "csr" if x.format == "csc" else "csc"
        return Apply(self, [x], [SparseType(fmt, x.dtype)()])

    def perform(self, node, inputs):
        return (inputs[0].transpose().copy(),)

    def pullback(self, node, inputs, outputs, output_grads):
        return [transpose(output_grads[0])]


class Neg(Op):
    """-x, on the stored entries."""

    def make_node(self, x):
        x = _sparse(x, "neg")
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs):
        return (-inputs[0],)

    def pullback(self, node, inputs, outputs, output_grads):
        return [neg(output_grads[0])]


class AddSS(Op):
    """Sparse + sparse (same shape): sparse, in the first operand's format."""

    def make_node(self, x, y):
        x, y = _sparse(x, "add x"), _sparse(y, "add y")
        return Apply(self, [x, y], [SparseType(x.format, _upcast(x.dtype, y.dtype))()])

    def perform(self, node, inputs):
        x, y = inputs
        _check_shapes("add", x, y)
        out = node.outputs[0].type
        return ((x + y).asformat(out.format).astype(out.numpy_dtype, copy=False),)

    def pullback(self, node, inputs, outputs, output_grads):
        x, y = inputs
        gz = output_grads[0]
        return [_as_grad(gz, x), _as_grad(gz, y)]


class AddSD(Op):
    """Sparse + dense (same shape): dense. The sparse operand's gradient is structured."""

    def make_node(self, x, y):
        x, y = _sparse(x, "add x"), _dense(y, 2, "add y")
        return Apply(self, [x, y], [TensorType(_upcast(x.dtype, y.dtype), (None, None))()])

    def perform(self, node, inputs):
        x, y = inputs
        _check_shapes("add", x, y)
        return (np.asarray(x + y, dtype=node.outputs[0].type.numpy_dtype),)

    def pullback(self, node, inputs, outputs, output_grads):
        x, y = inputs
        gz = output_grads[0]
        return [_as_grad(mask(gz, x), x), gz]


class MulSS(Op):
    """Sparse * sparse, elementwise (same shape): sparse, in the first operand's format."""

    def make_node(self, x, y):
        x, y = _sparse(x, "mul x"), _sparse(y, "mul y")
        return Apply(self, [x, y], [SparseType(x.format, _upcast(x.dtype, y.dtype))()])

    def perform(self, node, inputs):
        x, y = inputs
        _check_shapes("mul", x, y)
        out = node.outputs[0].type
        return (x.multiply(y).asformat(out.format).astype(out.numpy_dtype, copy=False),)

    def pullback(self, node, inputs, outputs, output_grads):
        x, y = inputs
        gz = output_grads[0]
        return [_as_grad(mul(y, gz), x), _as_grad(mul(x, gz), y)]


class MulSD(Op):
    """Sparse * dense, elementwise (the dense operand a matrix of the same shape, or a scalar
    or vector broadcast as NumPy does): sparse, on the sparse operand's pattern."""

    def make_node(self, x, y):
        x, y = _sparse(x, "mul x"), _dense(y, None, "mul y")
        if y.ndim > 2:
            raise TypeError(f"mul y: expected at most 2 dimensions, got {y} with {y.ndim}")
        return Apply(self, [x, y], [SparseType(x.format, _upcast(x.dtype, y.dtype))()])

    def perform(self, node, inputs):
        x, y = inputs
        if y.ndim == 2 and y.shape != x.shape:
            _check_shapes("mul", x, y)
        out = node.outputs[0].type
        z = x.multiply(np.broadcast_to(y, x.shape) if y.ndim else y)
        return (make(out.format, z).astype(out.numpy_dtype, copy=False),)

    def pullback(self, node, inputs, outputs, output_grads):
        x, y = inputs
        gz = output_grads[0]
        gy = dense_from_sparse(mul(gz, x))
        if y.ndim < 2:
            from theanine.tensor.reduction import sum as tsum

            gy = tsum(gy) if y.ndim == 0 else tsum(gy, axis=0)
        return [_as_grad(mul(gz, y), x), gy]


class SpSum(Op):
    """The sum of a sparse matrix's entries over `axis` (None, 0 or 1): dense. With
    `sparse_grad`, the gradient keeps x's pattern (Theano's structured gradient)."""

    __props__ = ("axis", "sparse_grad")

    def __init__(self, axis=None, sparse_grad: bool = True):
        if axis not in (None, 0, 1):
            raise ValueError(f"sp_sum: axis must be None, 0 or 1, got {axis!r}")
        self.axis, self.sparse_grad = axis, sparse_grad

    def make_node(self, x):
        x = _sparse(x, "sp_sum")
        shape = () if self.axis is None else (None,)
        return Apply(self, [x], [TensorType(x.dtype, shape)()])

    def perform(self, node, inputs):
        s = inputs[0].sum(axis=self.axis)
        return (np.asarray(s, dtype=node.outputs[0].type.numpy_dtype).reshape(
            () if self.axis is None else -1),)

    def pullback(self, node, inputs, outputs, output_grads):
        from theanine.tensor.allocation import alloc

        x = inputs[0]
        gz = output_grads[0]
        rows, cols = _shape_of(x)
        if self.axis == 0:
            gz = gz.dimshuffle("x", 0)
        elif self.axis == 1:
            gz = gz.dimshuffle(0, "x")
        full = alloc(gz, rows, cols)
        return [mask(full, x) if self.sparse_grad else SparseFromDense(x.format)(full)]


class StructuredDot(Op):
    """Sparse matrix @ dense matrix: dense. The sparse operand's gradient is structured (the
    product's gradient at the entries it stores)."""

    def make_node(self, a, b):
        a, b = _sparse(a, "structured_dot a"), _dense(b, 2, "structured_dot b")
        return Apply(self, [a, b], [TensorType(_upcast(a.dtype, b.dtype), (None, None))()])

    def perform(self, node, inputs):
        a, b = inputs
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"structured_dot: shapes {a.shape} and {b.shape} do not align")
        return (np.asarray(a @ b, dtype=node.outputs[0].type.numpy_dtype),)

    def pullback(self, node, inputs, outputs, output_grads):
        a, b = inputs
        gz = output_grads[0]
        _, indices, indptr, shape = csm_properties(a)
        ga = CSM(a.format)(StructuredDotGrad()(a, gz, b), indices, indptr, shape)
        return [_as_grad(ga, a), structured_dot(transpose(a), gz)]


class StructuredDotGrad(Op):
    """(gz @ b.T) at the entries sparse `a` stores, in a's storage order: the data of
    structured_dot's structured gradient, computed at those entries only (never the dense
    product)."""

    def make_node(self, a, gz, b):
        a = _sparse(a, "StructuredDotGrad pattern")
        gz, b = _dense(gz, 2, "StructuredDotGrad gz"), _dense(b, 2, "StructuredDotGrad b")
        return Apply(self, [a, gz, b], [TensorType(_upcast(gz.dtype, b.dtype), (None,))()])

    def perform(self, node, inputs):
        a, gz, b = inputs
        coo = a.tocoo()
        values = np.einsum("ij,ij->i", gz[coo.row], b[coo.col])
        return (values.astype(node.outputs[0].type.numpy_dtype, copy=False),)

    def pullback(self, node, inputs, outputs, output_grads):
        a, gz, b = inputs
        _, indices, indptr, shape = csm_properties(a)
        g = CSM(a.format)(output_grads[0], indices, indptr, shape)
        return [None, structured_dot(g, b), structured_dot(transpose(g), gz)]

    def connection_pattern(self, node):
        return [[False], [True], [True]]


class SpDot(Op):
    """Sparse matrix @ sparse matrix: sparse, in the first operand's format."""

    def make_node(self, a, b):
        a, b = _sparse(a, "dot a"), _sparse(b, "dot b")
        return Apply(self, [a, b], [SparseType(a.format, _upcast(a.dtype, b.dtype))()])

    def perform(self, node, inputs):
        a, b = inputs
        if a.shape[1] != b.shape[0]:
            raise ValueError(f"dot: shapes {a.shape} and {b.shape} do not align")
        out = node.outputs[0].type
        return ((a @ b).asformat(out.format).astype(out.numpy_dtype, copy=False),)

    def pullback(self, node, inputs, outputs, output_grads):
        a, b = inputs
        gz = output_grads[0]
        return [_as_grad(dot(gz, transpose(b)), a), _as_grad(dot(transpose(a), gz), b)]


def _as_grad(g, x):
    """Gradient `g` in the type of `x`: converted to x's format and dtype."""
    if g.format != x.format:
        g = to_format(g, x.format)
    if g.dtype != x.dtype:
        raise TypeError(f"the gradient of {x} has dtype {g.dtype}, not {x.dtype}")
    return g


def _shape_of(x):
    """The two symbolic lengths of sparse matrix `x`."""
    shape = csm_properties(x)[3]
    return [shape[0], shape[1]]


# -- the functions (Theano's names) -------------------------------------------------------------
_CSM_PROPERTIES = CSMProperties()


def csm_properties(x):
    """(data, indices, indptr, shape) of sparse matrix `x`."""
    return _CSM_PROPERTIES(x)


def csm_data(x):
    return csm_properties(x)[0]


def csm_indices(x):
    return csm_properties(x)[1]


def csm_indptr(x):
    return csm_properties(x)[2]


def csm_shape(x):
    return csm_properties(x)[3]


CSC = CSM("csc")
CSR = CSM("csr")
dense_from_sparse = DenseFromSparse()
csc_from_dense = SparseFromDense("csc")
csr_from_dense = SparseFromDense("csr")


def to_format(x, format: str):
    """Sparse `x` in `format` (itself when it already is)."""
    return x if x.format == format else ToFormat(format)(x)


def transpose(x):
    return Transpose()(x)


def neg(x):
    return Neg()(x)


def mask(z, x):
    """`z` (sparse or dense) kept only at the entries `x` stores: sparse, in x's format."""
    _, indices, indptr, shape = csm_properties(x)
    return CSM(x.format)(ValuesAt()(x, z), indices, indptr, shape)


def add(x, y):
    """x + y with at least one sparse operand: sparse + sparse is sparse, with a dense
    operand dense (Theano's add)."""
    x, y = as_sparse_or_tensor_variable(x), as_sparse_or_tensor_variable(y)
    if isinstance(x, SparseVariable) and isinstance(y, SparseVariable):
        return AddSS()(x, y)
    if isinstance(x, SparseVariable):
        return AddSD()(x, y)
    if isinstance(y, SparseVariable):
        return AddSD()(y, x)
    raise TypeError("sparse.add: neither operand is sparse")


def sub(x, y):
    return add(x, neg(y) if isinstance(as_sparse_or_tensor_variable(y), SparseVariable)
               else -as_sparse_or_tensor_variable(y))


def mul(x, y):
    """Elementwise x * y with at least one sparse operand: sparse (Theano's mul)."""
    x, y = as_sparse_or_tensor_variable(x), as_sparse_or_tensor_variable(y)
    if isinstance(x, SparseVariable) and isinstance(y, SparseVariable):
        return MulSS()(x, y)
    if isinstance(x, SparseVariable):
        return MulSD()(x, y)
    if isinstance(y, SparseVariable):
        return MulSD()(y, x)
    raise TypeError("sparse.mul: neither operand is sparse")


def structured_dot(a, b):
    """Sparse `a` @ dense `b` (dense), with a structured gradient for `a`."""
    return StructuredDot()(a, b)


def dot(x, y):
    """x @ y with at least one sparse operand (Theano's sparse.dot): sparse @ dense and dense
    @ sparse are dense, sparse @ sparse is sparse."""
    x, y = as_sparse_or_tensor_variable(x), as_sparse_or_tensor_variable(y)
    xs, ys = isinstance(x, SparseVariable), isinstance(y, SparseVariable)
    if xs and ys:
        return SpDot()(x, y)
    if xs:
        return structured_dot(x, y)
    if ys:
        return structured_dot(transpose(y), x.T).T
    raise TypeError("sparse.dot: neither operand is sparse")


true_dot = dot


def sp_sum(x, axis=None, sparse_grad: bool = True):
    """The sum of sparse `x`'s entries over `axis` (None, 0 or 1)."""
    return SpSum(axis, sparse_grad)(x)
