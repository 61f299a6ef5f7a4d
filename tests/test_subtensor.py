"""Indexing (theanine.tensor.subtensor) against NumPy: basic, integer-array and boolean-mask
indexing, set_subtensor / inc_subtensor, static shapes, infer_shape, gradients and errors."""

import numpy as np
import pytest

import theanine.tensor as T
from theanine.compile.function import function
from theanine.gradient import verify_grad
from theanine.graph.basic import GraphError
from theanine.tensor import shape_ops as S
from theanine.tensor import subtensor as ST
from theanine.tensor.type import TensorType

RNG = np.random.default_rng(11)
A = RNG.normal(size=(4, 3, 5))


def sym(arr, static=False, name="x"):
    arr = np.asarray(arr)
    return TensorType(arr.dtype, arr.shape if static else (None,) * arr.ndim)(name)


def run(inputs, outputs, *values):
    return function(inputs, outputs, on_unused_input="ignore")(*values)


def inferred(out, inputs, *values):
    """The shape `infer_shape` gives for out's node, evaluated on the given input values."""
    node = out.owner
    entries = node.op.infer_shape(node, [S.shape_tuple(v) for v in node.inputs])[out.index]
    if not entries:
        return ()
    return tuple(int(v) for v in run(inputs, [S.entry_variable(e) for e in entries], *values))


def check(out, inputs, values, expected):
    """Value, dtype and shape against NumPy; static shape consistent; infer_shape exact."""
    got = run(inputs, out, *values)
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype == np.dtype(out.dtype)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert all(s is None or s == e for s, e in zip(out.type.shape, got.shape, strict=True))
    assert inferred(out, inputs, *values) == got.shape


BASIC = [
    0, -1, (1, 2), (-4, -3, -5), slice(None), slice(1, None), slice(None, -1), slice(None, None, 2),
    slice(None, None, -1), slice(3, 0, -2), slice(-2, None, -1), slice(10, None), slice(-10, 2),
    slice(2, 1), (slice(None), 0), (Ellipsis, 1), (0, Ellipsis), (1, Ellipsis, slice(1, 3)),
    None, (None, 1), (slice(None), None, slice(1, 2)), (Ellipsis, None), (), Ellipsis,
    (1, 2, 3), (np.int32(2), slice(np.int64(1), None)),
]


@pytest.mark.parametrize("index", BASIC, ids=repr)
@pytest.mark.parametrize("static", [False, True])
def test_basic_indexing(index, static):
    x = sym(A, static)
    out = x[index]
    assert type(out.owner.op) is ST.Subtensor
    check(out, [x], [A], A[index])
    if static:
        assert out.type.shape == A[index].shape


SYMBOLIC = [  # (start, stop, step) for x[start:stop:step] on axis 0 (length 4)
    (1, None, None), (None, -1, None), (-3, 3, None), (None, None, 2), (None, None, -1),
    (3, 0, -1), (-1, -4, -2), (0, 10, 3), (-10, 10, None), (2, 2, None), (3, 1, None),
    (None, None, -3), (10, None, -1),
]


@pytest.mark.parametrize("start,stop,step", SYMBOLIC)
def test_symbolic_slice_bounds(start, stop, step):
    i, j, k = T.lscalar("i"), T.iscalar("j"), T.lscalar("k")
    x = sym(A)
    vals = [A] + [v for v in (start, stop, step) if v is not None]
    parts = [None if v is None else s for v, s in zip((start, stop, step), (i, j, k), strict=True)]
    ins = [x] + [s for s in parts if s is not None]
    out = x[parts[0]:parts[1]:parts[2], 1]
    check(out, ins, vals, A[start:stop:step, 1])


def test_symbolic_scalar_index():
    i = T.bscalar("i")
    x = sym(A)
    check(x[i, -1, i], [x, i], [A, 2], A[2, -1, 2])
    check(x[i], [x, i], [A, -1], A[-1])
    f = function([x, i], x[i])
    with pytest.raises(IndexError, match=r"Subtensor\[\?\] of x \(shape \(4, 3, 5\)\): index 7 is "
                                         "out of bounds for axis 0 with size 4"):
        f(A, 7)


def test_basic_indexing_is_a_view_and_constants_fold_to_ints():
    x = sym(A)
    out = x[T.constant(1), 1:T.constant(3)]
    assert out.owner.op.idx_list == (1, (1, 3, None)) and len(out.owner.inputs) == 1
    assert ST.Subtensor.view_of == {0: 0}
    assert hash(out.owner.op) == hash(ST.Subtensor([1, (1, 3, None)]))


ADVANCED = [
    [0, 2, 2], np.array([[0, 1], [3, 3]]), ([0, 1], [1, 2]), (slice(None), [0, 2, 2]),
    (slice(None), [0, 2], slice(1, 4)), ([1, 0], slice(None), [4, 0]), (0, slice(None), [1, 3]),
    (Ellipsis, [1, 0]), ([0, 1], Ellipsis, [1, 2]), ([0, 1], None, [1, 2]), (None, [0, 3]),
    (slice(None), [[0], [2]], [1, 4, 0]), ([-1, -4],), ([],), (1, [0, 2], 2),
]


@pytest.mark.parametrize("index", ADVANCED, ids=repr)
@pytest.mark.parametrize("static", [False, True])
def test_integer_array_indexing(index, static):
    x = sym(A, static)
    out = x[index]
    assert type(out.owner.op) is ST.AdvancedSubtensor
    check(out, [x], [A], A[index])
    if static:
        assert out.type.shape == A[index].shape


def test_symbolic_integer_indices():
    x, v, w = sym(A), T.lvector("v"), T.imatrix("w")
    check(x[v], [x, v], [A, np.array([3, 0, 3])], A[[3, 0, 3]])
    check(x[1:, w, v], [x, w, v], [A, np.array([[0], [2]], "int32"), np.array([1, 1, 4])],
          A[1:, np.array([[0], [2]]), np.array([1, 1, 4])])
    i = T.lscalar("i")
    check(x[v, i], [x, v, i], [A, np.array([1, 2]), 2], A[[1, 2], 2])
    check(x[[i, 0]], [x, i], [A, 3], A[[3, 0]])


MASK = A[:, :, 0] > 0
ROWS = np.array([True, False, True, False])


@pytest.mark.parametrize("index", [A > 0, MASK, (MASK, 1), (slice(None), A[0, :, :] > 0),
                                   (A[:, 0, 0] > 0,), (ROWS, slice(1, None), [1, 2]),
                                   (1, A[0, :, 0] > 0), (Ellipsis, A[0, 0] > 0), True, (0, False)],
                         ids=lambda i: "mask")
def test_boolean_mask_indexing(index):
    x = sym(A)
    check(x[index], [x], [A], A[index])
    static = sym(A, static=True)[index]
    assert static.type.shape == A[index].shape  # a constant mask's count is known


def test_symbolic_mask():
    x = sym(A)
    out = x[x > 0]
    assert out.type.shape == (None,)
    check(out, [x], [A], A[A > 0])
    m = T.tensor("bool", (None,), name="m")
    out = x[m, 1:]
    assert out.ndim == 3
    check(out, [x, m], [A, np.array([True, False, True, True])], A[[True, False, True, True], 1:])
    s = TensorType("float64", (4, 3, 5))("s")
    assert s[s[:, :, 0] > 0].type.shape == (None, 5)


# -- set_subtensor / inc_subtensor ---------------------------------------------------------------
SET_CASES = [  # (index, shape of y)
    ((1,), (3, 5)), ((1,), (5,)), ((slice(None), 0), (4, 1)), ((slice(1, 3), 2, 4), ()),
    ((Ellipsis, slice(None, None, -2)), (3, 3)), (([0, 0, 2],), (3, 3, 5)),
    ((slice(None), [1, 1]), (1, 2, 5)), (([3, 0], [1, 1]), (5,)), ((A > 0.5,), None),
    ((slice(None), [0, 2], None, slice(1, 3)), (4, 2, 1, 2)),
]


@pytest.mark.parametrize("index,yshape", SET_CASES, ids=repr)
@pytest.mark.parametrize("mode", ["set", "inc"])
def test_set_and_inc_subtensor(index, yshape, mode):
    yshape = (int((A > 0.5).sum()),) if yshape is None else yshape
    b = RNG.normal(size=yshape)
    x, y = sym(A), sym(b, name="y")
    fn = ST.set_subtensor if mode == "set" else ST.inc_subtensor
    out = fn(x[index], y)
    expected = A.copy()
    if mode == "set":
        expected[index] = b
    else:
        np.add.at(expected, index, b)
    check(out, [x, y], [A, b], expected)
    assert out.type == x.type
    verify_grad(lambda u, v: fn(u[index], v), [A, b])


def test_inc_subtensor_repeated_indices_accumulate():
    x, v = T.dvector("x"), T.lvector("v")
    out = ST.inc_subtensor(x[v], 1.0)
    got = run([x, v], out, np.zeros(4), np.array([0, 2, 2, 2]))
    np.testing.assert_array_equal(got, [1, 0, 3, 0])
    # the gradient of an advanced subtensor adds once per occurrence too
    verify_grad(lambda u: u[[0, 2, 2, 2]] * np.arange(4.0), [np.zeros(4)])


def test_set_inc_dtypes_and_python_scalars():
    x = T.fmatrix("x")
    a = np.ones((2, 3), "float32")
    out = ST.set_subtensor(x[0], 2)
    assert out.dtype == "float32"
    check(out, [x], [a], np.array([[2, 2, 2], [1, 1, 1]], "float32"))
    y = T.dvector("y")
    check(ST.inc_subtensor(x[:, 1], y), [x, y], [a, np.array([1.0, 2.0])],
          np.array([[1, 2, 1], [1, 3, 1]], "float32"))
    i = T.imatrix("i")
    with pytest.raises(GraphError, match="cannot store y of dtype float64 into i of dtype int32"):
        ST.set_subtensor(i[0], y)


def test_set_subtensor_errors():
    x = TensorType("float64", (4, 3))("x")
    with pytest.raises(GraphError, match="the first argument must be the result of indexing"):
        ST.set_subtensor(x, 1.0)
    with pytest.raises(GraphError, match=r"y of static shape \(2,\) cannot be broadcast to the "
                                         r"indexed part of x, of shape \(3,\)"):
        ST.set_subtensor(x[0], TensorType("float64", (2,))("y"))
    with pytest.raises(GraphError, match="cannot be broadcast"):
        ST.inc_subtensor(x[0], T.dmatrix("m"))
    v = T.dvector("v")
    w = T.dvector("w")
    f = function([v, w], ST.inc_subtensor(v[[0, 1]], w))
    with pytest.raises(ValueError, match=r"AdvancedIncSubtensor\[\?\] of v \(x shape \(5,\), "
                                         r"y shape \(3,\)\)"):
        f(np.zeros(5), np.ones(3))


# -- gradients of indexing -----------------------------------------------------------------------
@pytest.mark.parametrize("index", [(1,), (slice(None, None, -2), 0), (Ellipsis, None, 3),
                                   ([0, 0, 3],), (slice(None), [2, 0], [1, 1])], ids=repr)
def test_subtensor_grad(index):
    verify_grad(lambda u: u[index], [A])


def test_mask_and_symbolic_slice_grad():
    verify_grad(lambda u: u[u > 0.2], [A])
    verify_grad(lambda u: u[1:S.shape_tuple(u)[0] - 1, ::2], [A])


# -- errors --------------------------------------------------------------------------------------
def test_indexing_errors():
    x = TensorType("float64", (4, 3))("x")
    with pytest.raises(GraphError, match=r"index 4 is out of bounds for axis 0 of x with size 4"):
        x[4]
    with pytest.raises(GraphError, match=r"index -4 is out of bounds for axis 1 of x with size 3"):
        x[:, [0, -4]]
    with pytest.raises(GraphError, match=r"too many indices for x: it has 2 dims .* but 3 were"):
        x[0, 0, 0]
    with pytest.raises(GraphError, match="indices must be integers or booleans"):
        x[T.dscalar("f")]
    with pytest.raises(GraphError, match="Cannot index x with float 1.0"):
        x[1.0]
    with pytest.raises(GraphError, match="slice bounds must be integers"):
        x[T.dscalar("f"):]
    with pytest.raises(GraphError, match="single ellipsis"):
        x[..., 0, ...]
    with pytest.raises(GraphError, match="slice step cannot be zero"):
        x[::0]
    with pytest.raises(GraphError, match=r"boolean index .* of shape \(3,\) does not match x of "
                                         r"shape \(4, 3\) on axis 0"):
        x[np.ones(3, bool)]
    with pytest.raises(GraphError, match="do not broadcast together"):
        x[[0, 1], [0, 1, 2]]
    v = T.dvector("v")
    i = T.lvector("i")
    f = function([v, i], v[i])
    with pytest.raises(IndexError, match=r"AdvancedSubtensor\[\?\] of v \(shape \(3,\)\): index 5"):
        f(np.zeros(3), np.array([5]))
