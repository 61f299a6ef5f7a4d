"""theanine.sparse (Theano's theano.sparse) against scipy and NumPy on the numpy and c
backends: values, structured and dense gradients, the sparse tutorial's examples, errors
naming the bad input, and the GPU backends' refusal."""

import numpy as np
import pytest
import scipy.sparse as sp

import theanine as theano
import theanine.tensor as T
from theanine import sparse
from theanine.backend import backends

BACKENDS = ["numpy", "c"]


@pytest.fixture(params=BACKENDS)
def fn(request):
    """function() on one of the backends sparse runs on."""
    return lambda ins, outs, **kw: theano.function(ins, outs, backend=request.param, **kw)


def _rand(fmt, shape=(4, 3), density=0.5, seed=0, dtype="float64"):
    rng = np.random.default_rng(seed)
    dense = rng.uniform(0.5, 2.0, shape) * (rng.uniform(size=shape) < density)
    return sp.csr_matrix(dense.astype(dtype)).asformat(fmt)


# -- the tutorial (doc/tutorial/sparse.txt) ------------------------------------------------------
def test_tutorial_csm_properties_to_csr(fn):
    x = sparse.csc_matrix(name="x", dtype="int64")
    data, indices, indptr, shape = sparse.csm_properties(x)
    y = sparse.CSR(data, indices, indptr, shape)
    f = fn([x], y)
    a = sp.csc_matrix(np.asarray([[0, 1, 1], [0, 0, 0], [1, 0, 0]]))
    assert a.toarray().tolist() == [[0, 1, 1], [0, 0, 0], [1, 0, 0]]
    out = f(a)
    assert out.format == "csr"
    assert out.toarray().tolist() == [[0, 0, 1], [1, 0, 0], [1, 0, 0]]


def test_tutorial_structured_add(fn):
    x = sparse.csc_matrix(name="x", dtype="float32")
    y = sparse.structured_add(x, 2)
    f = fn([x], y)
    a = sp.csc_matrix(np.asarray([[0, 0, -1], [0, -2, 1], [3, 0, 0]], dtype="float32"))
    out = f(a)
    assert out.dtype == np.float32
    assert out.toarray().tolist() == [[0, 0, 1], [0, 0, 3], [5, 0, 0]]


def test_tutorial_full_cycle(fn):
    x = sparse.csc_matrix(name="x", dtype="float32")
    z = sparse.csc_from_dense(sparse.dense_from_sparse(x))
    a = _rand("csc", dtype="float32")
    out = fn([x], z)(a)
    assert out.format == "csc" and (out != a).nnz == 0


# -- every op against scipy ------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csc", "csr"])
def test_conversions_and_properties(fn, fmt):
    x = sparse.matrix(fmt, "x", "float64")
    d = T.dmatrix("d")
    a = _rand(fmt)
    dense, props = fn([x], sparse.dense_from_sparse(x)), fn([x], sparse.csm_properties(x))
    np.testing.assert_array_equal(dense(a), a.toarray())
    data, indices, indptr, shape = props(a)
    np.testing.assert_array_equal(data, a.data)
    np.testing.assert_array_equal(indices, a.indices)
    np.testing.assert_array_equal(indptr, a.indptr)
    assert shape.tolist() == [4, 3] and indices.dtype == np.int32
    back = fn([d], sparse.SparseFromDense(fmt)(d))(a.toarray())
    assert back.format == fmt and (back != a).nnz == 0
    t = fn([x], sparse.transpose(x))(a)
    assert t.format == ("csr" if fmt == "csc" else "csc")
    np.testing.assert_array_equal(t.toarray(), a.toarray().T)
    np.testing.assert_array_equal(fn([x], x.toarray())(a), a.toarray())
    assert fn([x], x.shape)(a).tolist() == [4, 3]
    assert fn([x], sparse.dense_from_sparse(x).shape)(a).tolist() == [4, 3]
    other = "csr" if fmt == "csc" else "csc"
    c = fn([x], sparse.to_format(x, other))(a)
    assert c.format == other and (c != a).nnz == 0


@pytest.mark.parametrize("fmt", ["csc", "csr"])
def test_elementwise(fn, fmt):
    x, y = sparse.matrix(fmt, "x", "float64"), sparse.matrix(fmt, "y", "float64")
    d, s = T.dmatrix("d"), T.dscalar("s")
    a, b, m = _rand(fmt, seed=1), _rand(fmt, seed=2), np.arange(12.0).reshape(4, 3)
    A, B = a.toarray(), b.toarray()
    checks = [([x, y], sparse.add(x, y), (a, b), A + B),
              ([x, y], x - y, (a, b), A - B),
              ([x, d], sparse.add(x, d), (a, m), A + m),
              ([x, d], sparse.add(d, x), (a, m), A + m),
              ([x, d], d + x, (a, m), A + m),
              ([x, d], d - x, (a, m), m - A),
              ([x, d], x - d, (a, m), A - m),
              ([x, d], d * x, (a, m), A * m),
              ([x, y], sparse.mul(x, y), (a, b), A * B),
              ([x, d], x * d, (a, m), A * m),
              ([x, s], sparse.mul(s, x), (a, 3.0), A * 3),
              ([x], -x, (a,), -A),
              ([x], sparse.structured_sqr(x), (a,), A ** 2),
              ([x], sparse.sqrt(x), (a,), np.sqrt(A)),
              ([x], sparse.structured_exp(x), (a,), np.where(A != 0, np.exp(A), 0)),
              ([x], sparse.structured_pow(x, 3), (a,), A ** 3)]
    for ins, out, args, want in checks:
        got = fn(ins, out)(*args)
        if sp.issparse(got):
            assert got.format == fmt
            got = got.toarray()
        np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_sp_sum(fn, axis):
    x = sparse.csr_matrix("x", "float64")
    a = _rand("csr")
    np.testing.assert_allclose(fn([x], sparse.sp_sum(x, axis))(a),
                               np.asarray(a.sum(axis=axis)).reshape(() if axis is None else -1))


@pytest.mark.parametrize("fmt", ["csc", "csr"])
def test_dots(fn, fmt):
    x, y = sparse.matrix(fmt, "x", "float64"), sparse.matrix(fmt, "y", "float64")
    d = T.dmatrix("d")
    a, b = _rand(fmt, (4, 3), seed=3), _rand(fmt, (3, 5), seed=4)
    m, n = np.arange(15.0).reshape(3, 5), np.arange(8.0).reshape(2, 4)
    np.testing.assert_allclose(fn([x, d], sparse.structured_dot(x, d))(a, m), a @ m)
    np.testing.assert_allclose(fn([x, d], sparse.dot(x, d))(a, m), a @ m)
    np.testing.assert_allclose(fn([d, x], sparse.dot(d, x))(n, a), n @ a.toarray())
    ss = fn([x, y], sparse.dot(x, y))(a, b)
    assert ss.format == fmt
    np.testing.assert_allclose(ss.toarray(), (a @ b).toarray())


# -- gradients --------------------------------------------------------------------------------
def _numeric(f, point, eps=1e-6):
    g = np.zeros_like(point)
    for i in np.ndindex(point.shape):
        up, down = point.copy(), point.copy()
        up[i] += eps
        down[i] -= eps
        g[i] = (f(up) - f(down)) / (2 * eps)
    return g


def test_structured_dot_gradients(fn):
    x, d = sparse.csc_matrix("x", "float64"), T.dmatrix("d")
    a, m = _rand("csc", (4, 3), seed=5), np.random.default_rng(6).uniform(-1, 1, (3, 2))
    cost = T.sum(T.sin(sparse.structured_dot(x, d)))
    gx, gd = theano.grad(cost, [x, d])
    assert isinstance(gx.type, sparse.SparseType) and gx.format == "csc"
    gxv, gdv = fn([x, d], [gx, gd])(a, m)
    f = fn([x, d], cost)
    np.testing.assert_allclose(gdv, _numeric(lambda p: f(a, p), m), rtol=1e-6, atol=1e-8)
    # structured: the dense gradient at the stored entries, zero elsewhere
    full = _numeric(lambda p: np.sum(np.sin(p @ m)), a.toarray())
    np.testing.assert_allclose(gxv.toarray(), full * (a.toarray() != 0), rtol=1e-6, atol=1e-8)
    assert gxv.nnz == a.nnz


def test_structured_dot_second_order(fn):
    x, d = sparse.csc_matrix("x", "float64"), T.dmatrix("d")
    a, m = _rand("csc", (4, 3), seed=13), np.random.default_rng(14).uniform(-1, 1, (3, 2))
    gx = theano.grad(T.sum(T.sin(sparse.structured_dot(x, d))), x)
    second = sparse.sp_sum(sparse.structured_sqr(gx))
    g2 = fn([x, d], theano.grad(second, d))(a, m)
    f = fn([x, d], second)
    np.testing.assert_allclose(g2, _numeric(lambda p: f(a, p), m), rtol=1e-5, atol=1e-8)


def test_dense_operand_gradients(fn):
    x, d = sparse.csr_matrix("x", "float64"), T.dmatrix("d")
    a, m = _rand("csr", seed=7), np.random.default_rng(8).uniform(-1, 1, (4, 3))
    for out in [sparse.add(x, d), sparse.dense_from_sparse(sparse.mul(x, d)),
                sparse.dot(d.T, x)]:
        cost = T.sum(out ** 2)
        g = fn([x, d], theano.grad(cost, d))(a, m)
        f = fn([x, d], cost)
        np.testing.assert_allclose(g, _numeric(lambda p, f=f: f(a, p), m), rtol=1e-6,
                                   atol=1e-8)


def test_structured_gradients_of_sparse_inputs(fn):
    x = sparse.csc_matrix("x", "float64")
    a = _rand("csc", seed=9)
    A = a.toarray()
    pattern = A != 0
    cases = [(T.sum(sparse.dense_from_sparse(x) ** 3), 3 * A ** 2),
             (T.sum(sparse.sp_sum(sparse.structured_sqr(x), axis=0) * [1.0, 2.0, 3.0]),
              2 * A * [1.0, 2.0, 3.0]),
             (sparse.sp_sum(sparse.mul(x, x), axis=None), 2 * A),
             (T.sum(sparse.csm_properties(x)[0] * 2), 2.0 + 0 * A),
             (sparse.sp_sum(sparse.transpose(x)), 1.0 + 0 * A)]
    for cost, want in cases:
        g = fn([x], theano.grad(cost, x))(a)
        assert g.format == "csc" and g.nnz == a.nnz
        np.testing.assert_allclose(g.toarray(), want * pattern, rtol=1e-12)


def test_dense_sparse_dot_gradient_is_structured(fn):
    x, d = sparse.csr_matrix("x", "float64"), T.dmatrix("d")
    a, m = sp.csr_matrix(np.array([[1.0, 0, 2], [0, 3, 0]])), np.arange(4.0).reshape(2, 2)
    g = fn([x, d], theano.grad(T.sum(sparse.dot(d, x)), x))(a, m)
    assert g.format == "csr"
    np.testing.assert_allclose(g.toarray(), m.T @ np.ones((2, 3)) * (a.toarray() != 0))
    ones = fn([x], sparse.sp_ones_like(x))(a)
    assert ones.nnz == a.nnz and ones.toarray().tolist() == (a.toarray() != 0).tolist()


def test_sparse_sparse_gradients(fn):
    x, y = sparse.csr_matrix("x", "float64"), sparse.csc_matrix("y", "float64")
    a, b = _rand("csr", (4, 3), seed=10), _rand("csc", (3, 2), seed=11)
    cost = sparse.sp_sum(sparse.dot(x, y))
    gx, gy = fn([x, y], theano.grad(cost, [x, y]))(a, b)
    assert gx.format == "csr" and gy.format == "csc"
    # sp_sum's structured gradient is one at the product's stored entries only
    ones = ((a @ b).toarray() != 0).astype(float)
    np.testing.assert_allclose(gx.toarray(), ones @ b.toarray().T)
    np.testing.assert_allclose(gy.toarray(), a.toarray().T @ ones)


# -- types, inputs and errors ---------------------------------------------------------------------
def test_types_and_constants(fn):
    x = sparse.csc_matrix("x")
    assert x.type == sparse.SparseType("csc", theano.config.floatX) and x.ndim == 2
    assert str(sparse.csr_matrix(dtype="int32").type) == "Sparse[int32, csr]"
    with pytest.raises(ValueError, match="format"):
        sparse.SparseType("coo", "float64")
    c = sparse.as_sparse_variable(_rand("csr"))
    assert isinstance(c, sparse.SparseConstant) and c.format == "csr"
    d = T.dmatrix("d")
    assert sparse.as_sparse_or_tensor_variable(d) is d
    np.testing.assert_allclose(fn([d], sparse.add(c, d))(np.ones((4, 3))),
                               _rand("csr").toarray() + 1)


def test_call_values_are_checked_naming_the_input(fn):
    x = sparse.csc_matrix("x", "float64")
    f = fn([x], sparse.dense_from_sparse(x))
    with pytest.raises(TypeError, match=r"input 0 \('x'\).*csc.*got a csr"):
        f(_rand("csr"))
    with pytest.raises(TypeError, match=r"input 0 \('x'\).*got ndarray"):
        f(np.ones((2, 2)))
    np.testing.assert_array_equal(f(sp.csc_matrix(np.eye(2, dtype="int32"))), np.eye(2))
    with pytest.raises(TypeError, match=r"input 0 \('x'\).*values would change"):
        fn([x], x)(sp.csc_matrix(np.full((2, 2), 1 + 2j)))


def test_graph_errors_name_the_operand():
    x, d = sparse.csc_matrix("x", "float64"), T.dmatrix("d")
    with pytest.raises(TypeError, match="dense_from_sparse: expected a sparse"):
        sparse.dense_from_sparse(d)
    with pytest.raises(TypeError, match="structured_dot b: expected a dense"):
        sparse.structured_dot(x, x)
    with pytest.raises(TypeError, match="structured_dot b: expected a 2-d"):
        sparse.structured_dot(x, T.dvector("v"))
    with pytest.raises(TypeError, match="neither operand is sparse"):
        sparse.add(d, d)


def test_shape_mismatch_is_reported(fn):
    x, y = sparse.csc_matrix("x", "float64"), sparse.csc_matrix("y", "float64")
    d = T.dmatrix("d")
    with pytest.raises(ValueError, match="add: the operands' shapes differ"):
        fn([x, y], sparse.add(x, y))(_rand("csc", (2, 3)), _rand("csc", (3, 2)))
    with pytest.raises(ValueError, match="structured_dot: shapes"):
        fn([x, d], sparse.structured_dot(x, d))(_rand("csc", (2, 3)), np.ones((2, 2)))


# -- GPU ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["opencl", "cuda"])
def test_gpu_backends_refuse_sparse_by_name(name):
    ok, why = backends()[name].available()
    if not ok:
        pytest.skip(f"{name} backend unavailable: {why}")
    x = sparse.csc_matrix("x", "float32")
    with pytest.raises(NotImplementedError,
                       match=r"DenseFromSparse.*sparse runs on the numpy and c backends"):
        theano.function([x], sparse.dense_from_sparse(x), backend=name)


def test_shared_sparse_values_and_updates(fn):
    a = _rand("csr", seed=12)
    W = theano.shared(a, name="W")
    assert isinstance(W.type, sparse.SparseType) and W.format == "csr"
    d = T.dmatrix("d")
    f = fn([d], sparse.dot(W, d), updates=[(W, sparse.structured_add(W, 1.0))])
    m = np.ones((3, 2))
    np.testing.assert_allclose(f(m), a @ m)
    bumped = a.copy()
    bumped.data += 1
    np.testing.assert_allclose(W.get_value().toarray(), bumped.toarray())
    np.testing.assert_allclose(f(m), bumped @ m)
    W.set_value(a)
    np.testing.assert_allclose(f(m), a @ m)
    with pytest.raises(TypeError, match="shared variable 'W'.*csr"):
        W.set_value(a.tocsc())


def test_debug_mode_checks_sparse_values(fn):
    x, d = sparse.csc_matrix("x", "float64"), T.dmatrix("d")
    a, m = _rand("csc", seed=15), np.ones((3, 2))
    out = sparse.structured_dot(x, d)
    f = fn([x, d], [sparse.neg(x), out, theano.grad(T.sum(out ** 2), x)], mode="DebugMode")
    neg, prod, g = f(a, m)
    np.testing.assert_allclose(neg.toarray(), -a.toarray())
    np.testing.assert_allclose(prod, a @ m)
    assert g.format == "csc" and g.nnz == a.nnz
