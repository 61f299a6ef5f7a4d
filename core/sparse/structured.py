"""Structured elementwise functions (Theano's sparse.structured_*, and its zero-preserving
`sqr`, `sqrt`, ...): a function applied to the stored entries only, the pattern kept.

Each is a graph: `CSM` rebuilds the matrix from the tensor function of its data vector, so
the gradient is the tensor function's, kept to the pattern (structured)."""

from __future__ import annotations

from theanine.sparse.ops import CSM, _sparse, csm_properties


def _on_data(x, fn, what: str):
    """Sparse `x` with `fn` applied to its data vector, on the same pattern."""
    x = _sparse(x, what)
    data, indices, indptr, shape = csm_properties(x)
    return CSM(x.format)(fn(data), indices, indptr, shape)


def _structured(name: str, tensor_fn_name: str):
    def fn(x, *args):
        import theanine.tensor as T

        f = T
        for part in tensor_fn_name.split("."):
            f = getattr(f, part)
        return _on_data(x, lambda d: f(d, *args), name)

    fn.__name__ = name
    fn.__doc__ = (f"{name}(x, ...): {tensor_fn_name} of sparse x's stored entries (structured; "
                  "zeros stay zeros)")
    return fn


structured_sigmoid = _structured("structured_sigmoid", "nnet.sigmoid")
structured_exp = _structured("structured_exp", "exp")
structured_log = _structured("structured_log", "log")
structured_pow = _structured("structured_pow", "pow")
structured_minimum = _structured("structured_minimum", "minimum")
structured_maximum = _structured("structured_maximum", "maximum")
structured_add = _structured("structured_add", "add")
sqr = structured_sqr = _structured("structured_sqr", "sqr")
sqrt = structured_sqrt = _structured("structured_sqrt", "sqrt")
abs_ = structured_abs = _structured("structured_abs", "abs_")
sin = _structured("sin", "sin")
tan = _structured("tan", "tan")
arcsin = _structured("arcsin", "arcsin")
arctan = _structured("arctan", "arctan")
sinh = _structured("sinh", "sinh")
tanh = _structured("tanh", "tanh")
expm1 = _structured("expm1", "expm1")
log1p = _structured("log1p", "log1p")
floor = _structured("floor", "floor")
ceil = _structured("ceil", "ceil")
sgn = _structured("sgn", "sgn")
sp_ones_like = _structured("sp_ones_like", "ones_like")
