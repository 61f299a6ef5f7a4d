"""theanine.sparse: Theano's theano.sparse, symbolic csc/csr matrices over scipy.sparse.

Sparse values run on the numpy and c backends (the ops call scipy); the GPU backends refuse
them by name. See docs/architecture.md, section 1."""

from theanine.sparse.ops import (
    CSC,
    CSM,
    CSR,
    AddSD,
    AddSS,
    CSMProperties,
    DenseFromSparse,
    MulSD,
    MulSS,
    Neg,
    SparseFromDense,
    SpDot,
    SpSum,
    StructuredDot,
    ToFormat,
    Transpose,
    ValuesAt,
    add,
    csc_from_dense,
    csm_data,
    csm_indices,
    csm_indptr,
    csm_properties,
    csm_shape,
    csr_from_dense,
    dense_from_sparse,
    dot,
    mask,
    mul,
    neg,
    sp_sum,
    structured_dot,
    sub,
    to_format,
    transpose,
    true_dot,
)
from theanine.sparse.structured import (
    abs_,
    arcsin,
    arctan,
    ceil,
    expm1,
    floor,
    log1p,
    sgn,
    sin,
    sinh,
    sqr,
    sqrt,
    structured_abs,
    structured_add,
    structured_exp,
    structured_log,
    structured_maximum,
    structured_minimum,
    structured_pow,
    structured_sigmoid,
    structured_sqr,
    structured_sqrt,
    tan,
    tanh,
)
from theanine.sparse.type import (
    SparseConstant,
    SparseType,
    SparseVariable,
    all_dtypes,
    as_sparse,
    as_sparse_or_tensor_variable,
    as_sparse_variable,
    csc_matrix,
    csr_matrix,
    is_sparse,
    matrix,
)

OPS = (AddSD, AddSS, CSM, CSMProperties, DenseFromSparse, MulSD, MulSS, Neg, SparseFromDense,
       SpDot, SpSum, StructuredDot, ToFormat, Transpose, ValuesAt)
"""Every sparse op class (the backends' tables register them; the GPU ones refuse them)."""

sparse_grad = dense_from_sparse
toarray = dense_from_sparse

__all__ = [
    "AddSD", "AddSS", "CSC", "CSM", "CSMProperties", "CSR", "DenseFromSparse", "MulSD", "MulSS",
    "Neg", "OPS", "SpDot", "SpSum", "SparseConstant", "SparseFromDense", "SparseType",
    "SparseVariable", "StructuredDot", "ToFormat", "Transpose", "ValuesAt", "abs_", "add",
    "all_dtypes", "arcsin", "arctan", "as_sparse", "as_sparse_or_tensor_variable",
    "as_sparse_variable", "ceil", "csc_from_dense", "csc_matrix", "csm_data", "csm_indices",
    "csm_indptr", "csm_properties", "csm_shape", "csr_from_dense", "csr_matrix",
    "dense_from_sparse", "dot", "expm1", "floor", "is_sparse", "log1p", "mask", "matrix", "mul",
    "neg", "sgn", "sin", "sinh", "sp_sum", "sparse_grad", "sqr", "sqrt", "structured_abs",
    "structured_add", "structured_dot", "structured_exp", "structured_log", "structured_maximum",
    "structured_minimum", "structured_pow", "structured_sigmoid", "structured_sqr",
    "structured_sqrt", "sub", "tan", "tanh", "to_format", "toarray", "transpose", "true_dot",
]
