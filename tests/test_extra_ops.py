"""Theano's array helpers built from theanine's ops (core/tensor/extra_ops.py): eye, tri,
tril/triu, diag, tile, repeat, roll, cumsum and cumprod against NumPy on the reference and C
backends, with gradients against finite differences."""

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.gradient import verify_grad
from theanine.graph.basic import GraphError

XV = np.arange(12.0).reshape(3, 4) + 1
VV = np.array([1.0, -2.0, 3.0])


def _cases():
    x, v, n = T.dmatrix("x"), T.dvector("v"), T.iscalar("n")
    return [
        ("eye", T.eye(n, 4, 1), [n], [3], np.eye(3, 4, 1)),
        ("identity_like", T.identity_like(x), [x], [XV], np.eye(3, 4)),
        ("tri", T.tri(3, 4, -1), [], [], np.tri(3, 4, -1)),
        ("tril", T.tril(x, 1), [x], [XV], np.tril(XV, 1)),
        ("triu", T.triu(x, -1), [x], [XV], np.triu(XV, -1)),
        ("diag_v+", T.diag(v, 1), [v], [VV], np.diag(VV, 1)),
        ("diag_v-", T.diag(v, -2), [v], [VV], np.diag(VV, -2)),
        ("diag_m+", T.diag(x, 1), [x], [XV], np.diag(XV, 1)),
        ("diag_m-", T.diag(x, -1), [x], [XV], np.diag(XV, -1)),
        ("tile", T.tile(x, (2, 1, 3)), [x], [XV], np.tile(XV, (2, 1, 3))),
        ("tile_v", T.tile(v, 2), [v], [VV], np.tile(VV, 2)),
        ("repeat_axis", T.repeat(x, 2, axis=1), [x], [XV], np.repeat(XV, 2, axis=1)),
        ("repeat_flat", T.repeat(x, 3), [x], [XV], np.repeat(XV, 3)),
        ("roll_axis", T.roll(x, 1, axis=1), [x], [XV], np.roll(XV, 1, axis=1)),
        ("roll_flat", T.roll(x, -5), [x], [XV], np.roll(XV, -5)),
        ("roll_sym", T.roll(x, n, 0), [x, n], [XV, 7], np.roll(XV, 7, 0)),
        ("cumsum_axis", T.cumsum(x, axis=1), [x], [XV], np.cumsum(XV, axis=1)),
        ("cumsum_flat", T.extra_ops.cumsum(x), [x], [XV], np.cumsum(XV)),
        ("cumprod", T.extra_ops.cumprod(x, axis=0), [x], [XV], np.cumprod(XV, axis=0)),
    ]


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_extra_ops_match_numpy(backend):
    for name, out, ins, vals, ref in _cases():
        got = th.function(ins, out, backend=backend)(*vals)
        assert got.shape == ref.shape and got.dtype == ref.dtype, name
        np.testing.assert_allclose(got, ref, rtol=1e-12, err_msg=name)


def test_running_sums_keep_numpys_dtypes_and_empty_axes():
    i = T.ivector("i")
    got = th.function([i], [T.cumsum(i), T.cumprod(i)])(np.array([1, 2, 3], "int32"))
    assert [g.dtype for g in got] == [np.cumsum(np.zeros(1, "int32")).dtype] * 2
    assert got[0].tolist() == [1, 3, 6] and got[1].tolist() == [1, 2, 6]
    x = T.dmatrix("x")
    empty = th.function([x], T.cumsum(x, axis=0))(np.zeros((0, 3)))
    assert empty.shape == (0, 3)


def test_extra_ops_gradients(rng):
    m = rng.normal(size=(3, 4))
    for fn in (lambda a: T.cumsum(a, axis=1), lambda a: T.cumprod(a, axis=0),
               lambda a: T.tile(a, (2, 2)), lambda a: T.repeat(a, 2, axis=0),
               lambda a: T.roll(a, 2, axis=1), lambda a: T.tril(a, 1), lambda a: T.diag(a, 1)):
        verify_grad(fn, [m], rng=rng)
    verify_grad(lambda a: T.diag(a, -1), [rng.normal(size=3)], rng=rng)


def test_extra_ops_errors_name_the_function():
    with pytest.raises(GraphError, match="repeat: `repeats` must be one int"):
        T.repeat(T.dvector("v"), np.array([1, 2]))
    with pytest.raises(GraphError, match="diag: expected a vector or a matrix"):
        T.diag(T.dtensor3("t"))
    with pytest.raises(GraphError, match="tile: repetitions must be >= 0"):
        T.tile(T.dvector("v"), (-1,))
