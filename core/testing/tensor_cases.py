"""Conformance cases for reductions, products (dot and friends), the neural-network functions
and the gradient helpers (zero_grad, disconnected_grad, jacobian, hessian)."""

from __future__ import annotations

from hypothesis import strategies as st

from theanine.testing.cases import ALL, FLOAT, Arg, Case, free, register, sized
from theanine.testing.elemwise_cases import COMPARE, LOGIC, MATH, RS, TIES
from theanine.testing.strategies import Domain, lengths

MATMUL = ("int32", "float32", "float64")


def _module(name: str):
    import importlib

    return importlib.import_module(f"theanine.{name}")


def _fn(name: str, module: str = "tensor"):
    return getattr(_module(module), name)


# -- reductions over a 3-d input: all axes, one axis, two axes, keepdims -------------------------
def reduction_case(name: str, domain: Domain, dtypes, min_side: int = 0, grad: bool = True,
                   extra=None) -> Case:
    """`name`(x, axis) for axis None, 1, (0, 2) and -1 with keepdims."""
    fn = _fn(name)

    def build(x):
        outs = [fn(x), fn(x, axis=1), fn(x, axis=(0, 2)), fn(x, axis=-1, keepdims=True)]
        return outs + (extra(x) if extra else [])

    return Case(name, build, (free(3, domain=domain, name="x"),), tuple(dtypes),
                functions=(name,), min_side=min_side, grad=grad, accumulates=True)


for _case in [
    reduction_case("sum", RS, ALL, extra=lambda x: [_fn("sum")(x, axis=0, dtype="float64")]),
    # magnitudes of at least 0.5 (or zero): no partial product underflows, so a slice holding
    # inf gives the same inf or NaN in any order of multiplication
    reduction_case("prod", Domain(-1.5, 1.5, specials=True, min_abs=0.5), ALL),
    reduction_case("max", TIES, ALL, min_side=1),
    reduction_case("min", TIES, ALL, min_side=1),
    reduction_case("all", TIES, LOGIC, grad=False),
    reduction_case("any", TIES, LOGIC, grad=False),
    reduction_case("argmax", TIES, COMPARE, min_side=1, grad=False),
    reduction_case("argmin", TIES, COMPARE, min_side=1, grad=False),
    reduction_case("mean", RS, ("int8", "int32", "float32", "float64")),
    reduction_case("var", RS, ("int32", "float32", "float64"),
                   extra=lambda x: [_fn("var")(x, axis=1, ddof=1)]),
    reduction_case("std", RS, ("int32", "float32", "float64"),
                   extra=lambda x: [_fn("std")(x, axis=(0, 1), ddof=1)]),
    reduction_case("logsumexp", RS, FLOAT, min_side=1),
]:
    register(_case)


# -- products ------------------------------------------------------------------------------------
def _dot(A, B, v, w, T3):
    dot = _fn("dot")
    return [dot(A, B), dot(A, v), dot(w, A), dot(v, v), dot(T3, B), dot(T3, v)]


register(Case("dot", _dot, (free(2, name="A"), free(2, name="B"), free(1, name="v"),
                            free(1, name="w"), free(3, name="T3")), MATMUL,
              functions=("dot",), accumulates=True,
              shapes=sized(4, lambda n, k, m, p: [(n, k), (k, m), (k,), (n,), (p, n, k)])))


def _matmul(A3, B3, A, v):
    mm = _fn("matmul")
    return [mm(A3, B3), mm(A3, v), mm(v, B3), mm(A, B3), mm(A, v)]


register(Case("matmul", _matmul, (free(3, name="A3"), free(3, name="B3"), free(2, name="A"),
                                  free(1, name="v")), MATMUL,
              functions=("matmul",), accumulates=True,
              shapes=sized(5, lambda b, n, k, m, one: [(b, n, k), (b if one % 2 else 1, k, m),
                                                       (n, k), (k,)])))


def _tensordot(T, U):
    td = _fn("tensordot")
    return [td(T, U), td(T, U, axes=([1], [0])), td(T, U, axes=([2, 1], [1, 0])),
            td(U, T, axes=([0, 1], [1, 2]))]


register(Case("tensordot", _tensordot, (free(3, name="T"), free(3, name="U")), MATMUL,
              functions=("tensordot",), accumulates=True,
              shapes=sized(4, lambda p, n, k, q: [(p, n, k), (n, k, q)])))


register(Case("outer", lambda v, w, M: [_fn("outer")(v, w), _fn("outer")(M, v)],
              (free(1, name="v"), free(1, name="w"), free(2, name="M")), MATMUL,
              functions=("outer",)))


def _batched_dot(X, Y, R, P, Q):
    bd = _fn("batched_dot")
    return [bd(X, Y), bd(X, R), bd(P, X), bd(P, Q)]


register(Case("batched_dot", _batched_dot,
              (free(3, name="X"), free(3, name="Y"), free(2, name="R"), free(2, name="P"),
               free(2, name="Q")), MATMUL, functions=("batched_dot",), accumulates=True,
              shapes=sized(4, lambda b, n, k, m: [(b, n, k), (b, k, m), (b, k), (b, n),
                                                  (b, n)])))


def _gemm(z, x, y, r):
    from theanine.tensor.blas import Gemm

    dot = _fn("dot")
    return [Gemm(0.5, 2.0)(z, x, y), Gemm(-1.0, 1.0)(r, x, y), z - 0.1 * dot(x, y),
            2 * z + dot(x, y)]


register(Case("gemm", _gemm, (free(2, name="z"), free(2, name="x"), free(2, name="y"),
                              free(2, name="r")), FLOAT, accumulates=True,
              notes="Gemm is formed by the specialize rewrites from z +- a * dot(x, y)",
              shapes=sized(4, lambda n, k, m, row: [(n, m), (n, k), (k, m),
                                                    (1, m) if row % 2 else (n, 1)])))


# -- neural-network functions --------------------------------------------------------------------
def _nnet(name: str):
    return getattr(_module("tensor.nnet"), name)


register(Case("relu", lambda x: [_nnet("relu")(x), _nnet("relu")(x, 0.1)],
              (free(2, domain=RS, name="x"),), MATH, functions=("relu",)))
register(Case("hard_sigmoid", lambda x: _nnet("hard_sigmoid")(x),
              (free(2, domain=RS, name="x"),), MATH, functions=("hard_sigmoid",)))


def _softmax_case(name: str) -> Case:
    fn = _nnet(name)
    return Case(name, lambda x, v: [fn(x), fn(x, axis=0), fn(v)],
                (free(2, domain=Domain(-30, 30, specials=True), name="x"),
                 free(1, domain=Domain(-30, 30, specials=True), name="v")),
                ("float32", "float64", "int8"), functions=(name,), accumulates=True)


register(_softmax_case("softmax"))
register(_softmax_case("log_softmax"))

PROBABILITY = Domain(0.01, 0.99)
register(Case("binary_crossentropy",
              lambda o, t: [_nnet("binary_crossentropy")(o, t),
                            _nnet("sigmoid_binary_crossentropy")((o - 0.5) * 8, t)],
              (free(2, domain=PROBABILITY, name="output"),
               free(2, domain=PROBABILITY, name="target")),
              FLOAT, functions=("binary_crossentropy", "sigmoid_binary_crossentropy")))


def _crossentropy(coding, true, labels):
    cce = _nnet("categorical_crossentropy")
    return [cce(coding, true), cce(coding, labels)]


register(Case("categorical_crossentropy", _crossentropy,
              (free(2, domain=Domain(0.01, 1), name="coding"),
               free(2, domain=Domain(0, 1), name="true_dist"),
               Arg((None,), "int64", lambda shapes: Domain(0, shapes[0][1] - 1), "labels")),
              FLOAT, functions=("categorical_crossentropy",), accumulates=True,
              shapes=lambda: st.tuples(lengths(1), lengths(1, 1)).map(
                  lambda d: [d[0] + d[1], d[0] + d[1], d[0]])))

register(Case("to_one_hot",
              lambda y: [_nnet("to_one_hot")(y, 5), _nnet("to_one_hot")(y, 5, dtype="int32")],
              (free(1, domain=Domain(0, 4), name="y"),), ("int8", "int32", "int64", "uint8"),
              functions=("to_one_hot",), grad=False))


# -- gradient helpers ----------------------------------------------------------------------------
def _stop_gradient(x):
    g = _module("gradient")
    return [x * g.zero_grad(x), _fn("sin")(g.disconnected_grad(x)) + x]


register(Case("stop_gradient", _stop_gradient, (free(2, domain=RS, name="x"),), FLOAT,
              functions=("zero_grad", "disconnected_grad")))
register(Case("jacobian",
              lambda v, w: _fn("jacobian", "gradient")(_fn("sin")(v) * w, [v, w]),
              (free(1, name="v"), free(1, name="w")), FLOAT, functions=("jacobian",),
              grad=False, shapes=sized(1, lambda n: [(n,), (n,)])))
register(Case("hessian",
              lambda v: _fn("hessian", "gradient")(_fn("sum")(v ** 3 * _fn("cos")(v)), v),
              (free(1, name="v"),), FLOAT, functions=("hessian",), grad=False))

__all__ = ["reduction_case"]
