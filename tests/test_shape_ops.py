"""Shape ops (theanine.tensor.shape_ops, .join, .alloc) against NumPy: values, dtypes, static
shapes, gradients by finite differences, infer_shape against the computed shape, graph errors."""

import numpy as np
import pytest

import theanine.tensor as T
from theanine.compile.function import function
from theanine.config import config
from theanine.gradient import verify_grad
from theanine.graph.basic import GraphError
from theanine.tensor import shape_ops as S
from theanine.tensor.allocation import alloc, arange, broadcast_to, ones, zeros
from theanine.tensor.join import concatenate, split, stack
from theanine.tensor.type import TensorType

RNG = np.random.default_rng(7)


def sym(arr, static=False, name="x"):
    """A symbolic input like `arr`: static shape known (static=True) or all unknown."""
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
    got = run(inputs, [S.entry_variable(e) for e in entries], *values)
    return tuple(int(v) for v in got)


def check(out, inputs, values, expected):
    """out computed on values equals `expected` (value, dtype, shape), its static shape agrees,
    and infer_shape gives the actual shape."""
    got = run(inputs, out, *values)
    assert got.dtype == expected.dtype == np.dtype(out.dtype)
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)
    assert all(s is None or s == e for s, e in zip(out.type.shape, got.shape, strict=True))
    if out.owner is not None:
        assert inferred(out, inputs, *values) == got.shape


# -- shape, shape_tuple, size, ndim --------------------------------------------------------------
def test_shape_and_shape_tuple():
    a = RNG.normal(size=(2, 3, 4))
    x = TensorType("float64", (2, None, 4))("x")
    check(x.shape, [x], [a], np.array([2, 3, 4]))
    assert x.shape.type == TensorType("int64", (3,))
    st = S.shape_tuple(x)
    assert st[0] == 2 and st[2] == 4 and isinstance(st[1], T.TensorVariable)
    assert st[1].dtype == "int64" and st[1].ndim == 0
    assert run([x], st[1], a) == 3
    assert S.ndim(x) == 3 and S.ndim(np.zeros((1, 2))) == 2


def test_shape_index_is_shape_i_or_constant():
    x = TensorType("float64", (2, None))("x")
    assert isinstance(x.shape[0], T.TensorConstant) and int(x.shape[0].data) == 2
    assert isinstance(x.shape[-1].owner.op, S.ShapeI) and x.shape[-1].owner.op.i == 1
    with pytest.raises(GraphError, match="index 2 is out of bounds for the shape of x"):
        x.shape[2]


def test_size():
    a = RNG.normal(size=(3, 5))
    x = sym(a)
    assert run([x], x.size, a) == 15 and x.size.dtype == "int64"
    assert int(sym(a, static=True).size.data) == 15
    assert int(S.size(sym(np.float64(1.0))).data) == 1


# -- reshape, flatten ----------------------------------------------------------------------------
@pytest.mark.parametrize("shape,target", [
    ((2, 3, 4), (6, 4)), ((2, 3, 4), (-1,)), ((2, 3, 4), (4, -1)), ((2, 3, 4), (2, -1, 2)),
    ((6,), (1, 6, 1)), ((1,), ()), ((), (1, 1)), ((0, 3), (3, 0)), ((0, 3), (-1, 3)),
])
@pytest.mark.parametrize("static", [False, True])
def test_reshape_matches_numpy(shape, target, static):
    a = RNG.normal(size=shape)
    x = sym(a, static)
    out = x.reshape(target)
    check(out, [x], [a], a.reshape(target))
    if static:
        assert out.type.shape == a.reshape(target).shape


def test_reshape_symbolic_entries():
    a, b = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(6, 1))
    x, y = sym(a), sym(b, name="y")
    n = T.lscalar("n")
    out = S.reshape(x, (y.shape[0], n))
    assert out.ndim == 2
    check(out, [x, y, n], [a, b, 4], a.reshape(6, 4))
    check(S.reshape(x, (y.shape[0], n)), [x, y, n], [a, b, -1], a.reshape(6, 4))
    z = TensorType("float64", (None, 4))("z")
    out = S.reshape(x, z.shape)
    assert out.type.shape == (None, 4)
    check(out, [x, z], [a, np.zeros((6, 4))], a.reshape(6, 4))
    v = T.lvector("v")
    check(S.reshape(x, v, ndim=2), [x, v], [a, np.array([4, -1])], a.reshape(4, -1))
    check(S.reshape(x, [n, 3, 2]), [x, n], [a, -1], a.reshape(-1, 3, 2))


def test_reshape_static_shape_from_other_shapes():
    x = TensorType("float64", (2, 3, None))("x")
    y = TensorType("float64", (6, None))("y")
    assert S.reshape(x, (y.shape[0], -1)).type.shape == (6, None)
    assert S.reshape(TensorType("float64", (2, 3))("z"), (3, -1)).type.shape == (3, 2)


def test_reshape_errors():
    x = TensorType("float64", (2, 3))("x")
    with pytest.raises(GraphError, match=r"cannot reshape x of static shape \(2, 3\) \(size 6\) "
                                         r"into shape \(4,\)"):
        S.reshape(x, (4,))
    with pytest.raises(GraphError, match="cannot reshape x"):
        S.reshape(x, (4, -1))
    with pytest.raises(GraphError, match="only one entry may be -1"):
        S.reshape(x, (-1, -1))
    with pytest.raises(GraphError, match="only one entry may be -1"):
        S.reshape(x, (-2, 3))
    with pytest.raises(GraphError, match="expected an integer scalar"):
        S.reshape(x, (T.dscalar("f"), 3))
    with pytest.raises(GraphError, match="pass ndim="):
        S.reshape(x, T.lvector("v"))
    y = T.dmatrix("y")
    f = function([y], S.reshape(y, (4,)))
    with pytest.raises(ValueError, match=r"reshape of y \(shape \(2, 3\)\) to \(4,\)"):
        f(np.zeros((2, 3)))


@pytest.mark.parametrize("shape,nd", [((2, 3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), 3),
                                      ((5,), 1), ((), 1), ((0, 2), 1)])
def test_flatten(shape, nd):
    a = RNG.normal(size=shape)
    x = sym(a)
    expected = a.reshape(a.shape[:nd - 1] + (-1,)) if a.ndim else a.reshape(1)
    check(x.flatten(nd), [x], [a], expected)
    assert sym(a, static=True).flatten(nd).type.shape == expected.shape
    with pytest.raises(GraphError, match="flatten: ndim must be between 1 and"):
        x.flatten(max(a.ndim, 1) + 1)


def test_reshape_flatten_grad():
    a = RNG.normal(size=(2, 3, 4))
    verify_grad(lambda v: S.reshape(v, (4, -1)), [a])
    verify_grad(lambda v: v.flatten(2), [a])


# -- transpose, squeeze, expand_dims -------------------------------------------------------------
@pytest.mark.parametrize("axes", [None, (0, 2, 1), (2, 0, 1), (-1, 0, 1)])
def test_transpose(axes):
    a = RNG.normal(size=(2, 3, 4))
    x = sym(a, static=True)
    out = S.transpose(x, axes)
    check(out, [x], [a], np.transpose(a, axes))
    assert out.type.shape == np.transpose(a, axes).shape
    verify_grad(lambda v: S.transpose(v, axes), [a])


def test_transpose_method_and_errors():
    a = RNG.normal(size=(2, 3))
    x = sym(a)
    check(x.T, [x], [a], a.T)
    check(x.transpose(1, 0), [x], [a], a.T)
    with pytest.raises(GraphError, match="not a permutation"):
        S.transpose(x, (0, 0))
    with pytest.raises(GraphError, match="axis 2 is out of range for the 2 dims of x"):
        S.transpose(x, (2, 0))


def test_squeeze():
    a = RNG.normal(size=(1, 3, 1))
    x = TensorType("float64", (1, None, None))("x")
    check(S.squeeze(x), [x], [a], a.reshape(1, 3, 1)[0])  # only the static 1 goes
    check(x.squeeze(2), [x], [a], a[:, :, 0])
    check(S.squeeze(x, (0, -1)), [x], [a], a[0, :, 0])
    f = function([x], S.squeeze(x, 1))
    with pytest.raises(ValueError, match=r"x has shape \(1, 3, 1\), expected \(\?, 1, \?\)"):
        f(a)
    with pytest.raises(GraphError, match=r"axis 0 of y has length 2 \(static shape \(2, 1\)\)"):
        S.squeeze(TensorType("float64", (2, 1))("y"), 0)
    verify_grad(lambda v: S.squeeze(v, 0), [a])


@pytest.mark.parametrize("axis", [0, 2, -1, (0, 3), (1, -1)])
def test_expand_dims(axis):
    a = RNG.normal(size=(2, 3))
    x = sym(a, static=True)
    out = S.expand_dims(x, axis)
    check(out, [x], [a], np.expand_dims(a, axis))
    assert out.type.shape == np.expand_dims(a, axis).shape


def test_expand_dims_errors():
    with pytest.raises(GraphError, match="axis 3 is out of range for the 3 dims"):
        S.expand_dims(T.dmatrix("x"), 3)
    with pytest.raises(GraphError, match="repeated axis"):
        S.expand_dims(T.dmatrix("x"), (0, 0))


# -- specify_shape -------------------------------------------------------------------------------
def test_specify_shape():
    a = RNG.normal(size=(2, 3))
    x = sym(a)
    n = T.lscalar("n")
    out = S.specify_shape(x, (2, None))
    assert out.type.shape == (2, None)
    check(out, [x], [a], a)
    check(S.specify_shape(x, (n, 3)), [x, n], [a, 2], a)
    f = function([x, n], S.specify_shape(x, (n, 3)))
    with pytest.raises(ValueError, match=r"specify_shape: x has shape \(2, 3\), expected "
                                         r"\(5, 3\)"):
        f(a, 5)
    with pytest.raises(ValueError, match=r"x has shape \(3, 2\), expected \(2, \?\)"):
        function([x], out)(a.T)
    with pytest.raises(GraphError, match=r"y has static shape \(2, 3\), which does not match "
                                         r"the specified \(2, 4\)"):
        S.specify_shape(TensorType("float64", (2, 3))("y"), (2, 4))
    with pytest.raises(GraphError, match="x has 2 dims, but the shape"):
        S.specify_shape(x, (2,))
    verify_grad(lambda v: S.specify_shape(v, (2, 3)), [a])


# -- concatenate, stack, split -------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate(axis):
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    x, y = sym(a, True), sym(b, True, "y")
    out = concatenate([x, y, x], axis)
    check(out, [x, y], [a, b], np.concatenate([a, b, a], axis))
    assert out.type.shape == np.concatenate([a, b, a], axis).shape
    verify_grad(lambda u, v: concatenate([u, v, u], axis), [a, b])


@pytest.mark.parametrize("d1,d2", [("int8", "uint8"), ("float32", "int64"), ("bool", "int16"),
                                   ("float32", "float32"), ("int32", "float64")])
def test_concatenate_upcasts_like_numpy(d1, d2):
    a, b = np.ones((2,), d1), np.zeros((3,), d2)
    x, y = sym(a), sym(b, name="y")
    check(concatenate([x, y]), [x, y], [a, b], np.concatenate([a, b]))


def test_concatenate_errors():
    x, y = TensorType("float64", (2, 3))("x"), TensorType("float64", (2, 4))("y")
    with pytest.raises(GraphError, match=r"input 1 \(y\) has static shape \(2, 4\), but input 0 "
                                         r"\(x\) has \(2, 3\); they differ on axis 1"):
        concatenate([x, y], axis=0)
    assert concatenate([x, y], axis=1).type.shape == (2, 7)
    with pytest.raises(GraphError, match="axis 2 is out of range"):
        concatenate([x, x], axis=2)
    with pytest.raises(GraphError, match="input 1 .* has 1"):
        concatenate([x, T.dvector("v")])
    with pytest.raises(GraphError, match="0-d tensors"):
        concatenate([T.dscalar("s"), T.dscalar("t")])
    u, v = T.dmatrix("u"), T.dmatrix("v")
    f = function([u, v], concatenate([u, v]))
    with pytest.raises(ValueError, match=r"concatenate on axis 0 of shapes \(2, 3\), \(2, 4\)"):
        f(np.zeros((2, 3)), np.zeros((2, 4)))


def test_stack():
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(2, 3))
    x, y = sym(a), sym(b, name="y")
    for axis in (0, 1, 2, -1):
        check(stack([x, y], axis), [x, y], [a, b], np.stack([a, b], axis))
    verify_grad(lambda u, v: stack([u, v], 1), [a, b])
    s, i = T.dscalar("s"), T.iscalar("i")
    out = stack([s, i, 2])
    assert isinstance(out.owner.op, S.MakeVector) and out.type.shape == (3,)
    check(out, [s, i], [1.5, 3], np.array([1.5, 3, 2]))
    check(T.as_tensor_variable([i, 4]), [i], [3], np.array([3, 4]))
    verify_grad(lambda u: stack([u[0], u[1] * 2, u[0]]), [RNG.normal(size=(2,))])
    with pytest.raises(GraphError, match="same number of dims"):
        stack([x, T.dvector("v")])


def test_split():
    a = RNG.normal(size=(2, 6))
    x = sym(a, True)
    parts = split(x, [1, 2, 3], 3, axis=1)
    assert [p.type.shape for p in parts] == [(2, 1), (2, 2), (2, 3)]
    for p, e in zip(parts, np.split(a, [1, 3], axis=1), strict=True):
        check(p, [x], [a], e)
    sizes = T.lvector("sizes")
    parts = split(sym(a), sizes, 2, axis=-1)
    got = run([parts[0].owner.inputs[0], sizes], parts, a, np.array([4, 2]))
    np.testing.assert_array_equal(got[1], a[:, 4:])
    assert inferred(parts[1], [parts[0].owner.inputs[0], sizes], a, np.array([4, 2])) == (2, 2)
    verify_grad(lambda v: split(v, [2, 4], 2, 1)[1] * 3, [a])
    with pytest.raises(GraphError, match=r"sizes \[1, 2\] add up to 3, but axis 1 of x has "
                                         "length 6"):
        split(x, [1, 2], 2, axis=1)
    f = function([parts[0].owner.inputs[0], sizes], parts)
    with pytest.raises(ValueError, match=r"split: cannot cut axis 1 .* sizes \[4, 4\]"):
        f(a, np.array([4, 4]))


# -- alloc, broadcast_to, zeros, ones, arange ----------------------------------------------------
def test_alloc_and_broadcast_to():
    a = RNG.normal(size=(3, 1))
    x = sym(a)
    n = T.lscalar("n")
    out = alloc(x, 2, 3, n)
    assert out.type.shape == (2, 3, None)
    check(out, [x, n], [a, 4], np.broadcast_to(a, (2, 3, 4)))
    check(broadcast_to(x, (n, 3, 5)), [x, n], [a, 2], np.broadcast_to(a, (2, 3, 5)))
    y = TensorType("float64", (4, None))("y")
    assert broadcast_to(T.dscalar("s"), y.shape).type.shape == (4, None)
    verify_grad(lambda v: alloc(v, 2, 3, 4), [a])
    verify_grad(lambda v: broadcast_to(v, (3, 5)), [a])
    with pytest.raises(GraphError, match=r"cannot broadcast z of static shape \(3,\) to shape "
                                         r"\(2, 4\)"):
        broadcast_to(TensorType("float64", (3,))("z"), (2, 4))
    f = function([x, n], out)
    with pytest.raises(ValueError, match=r"alloc of shape \(2, 3, 4\) from a value of shape "
                                         r"\(2, 1\)"):
        f(np.zeros((2, 1)), 4)


def test_zeros_ones():
    x = TensorType("float64", (None, 3))("x")
    z = zeros((x.shape[0], 2))
    assert z.dtype == config.floatX and z.type.shape == (None, 2)
    check(z, [x], [np.zeros((4, 3))], np.zeros((4, 2), config.floatX))
    check(ones(x.shape, "int8"), [x], [np.zeros((4, 3))], np.ones((4, 3), "int8"))
    check(ones(5, "bool"), [], [], np.ones(5, bool))
    assert zeros((2, 3)).type.shape == (2, 3)
    with pytest.raises(GraphError, match="shape entries must be >= 0"):
        zeros((-1, 2))
    with pytest.raises(GraphError, match="expected an int or an integer scalar variable"):
        ones((2.5,))


@pytest.mark.parametrize("args", [(5,), (2, 7), (7, 2, -2), (0.5, 3.0, 0.5), (3, 2), (-1, 5, 3)])
def test_arange_constant(args):
    out = arange(*args)
    expected = np.arange(*args)
    if expected.dtype == np.float64:
        expected = expected.astype(out.dtype)
    check(out, [], [], expected)
    assert out.type.shape == expected.shape


def test_arange_symbolic():
    start, stop, step = T.lscalar("start"), T.lscalar("stop"), T.lscalar("step")
    out = arange(start, stop, step)
    assert out.dtype == "int64" and out.type.shape == (None,)
    for vals in [(0, 10, 3), (10, 0, -3), (5, 5, 1), (5, 0, 1)]:
        check(out, [start, stop, step], list(vals), np.arange(*vals))
    assert arange(T.iscalar("n"), dtype="float32").dtype == "float32"
    verify_grad(lambda a, b: arange(a, a + 4.5, b), [np.array(0.3), np.array(1.2)])
    with pytest.raises(GraphError, match="step must not be zero"):
        arange(0, 5, 0)
    with pytest.raises(GraphError, match="stop must be a real scalar"):
        arange(T.dvector("v"))


def test_arange_dtype_rules():
    assert arange(5).dtype == "int64"
    assert arange(0.5, 3).dtype == config.floatX
    assert arange(T.iscalar("n")).dtype == "int32"  # Python bounds take the symbolic dtype
    assert arange(T.fscalar("a"), 5).dtype == "float32"
    assert arange(T.iscalar("n"), 2.5).dtype == "float64"
    check(arange(0.5, 3, dtype="int64"), [], [], np.arange(0.5, 3, dtype="int64"))


def test_theanos_plural_constructors():
    """T.dscalars('x', 'y'), T.matrices(2), T.iscalars('ij') (one per character) and a single
    name giving the variable itself, with the dtype and dims of the singular constructor."""
    x, y = T.dscalars("x", "y")
    assert (x.name, y.name, x.dtype, x.ndim) == ("x", "y", "float64", 0)
    i, j = T.iscalars("ij")
    assert (i.name, j.name, i.dtype) == ("i", "j", "int32")
    a, b = T.matrices(2)
    assert a.ndim == b.ndim == 2 and a.dtype == config.floatX and a is not b
    u = T.ftensor3s("u")
    assert (u.name, u.dtype, u.ndim) == ("u", "float32", 3)
    r, c = T.rows("r", "c")
    assert r.type.shape == (1, None)
    f = function([x, y, a], x * a + y)
    np.testing.assert_allclose(f(2.0, 1.0, np.ones((2, 2))), np.full((2, 2), 3.0))


def test_shape_padding_and_declared_broadcasting(rng):
    """shape_padleft/right/axis against np.expand_dims; addbroadcast / patternbroadcast
    declare length 1 and check it at run time; a known 1 cannot be made non-broadcastable."""
    x = T.dmatrix("x")
    v = rng.normal(size=(3, 4))
    outs = [T.shape_padleft(x), T.shape_padright(x, 2), T.shape_padaxis(x, 1),
            T.shape_padaxis(x, -1)]
    assert [o.type.shape for o in outs] == [(1, None, None), (None, None, 1, 1),
                                            (None, 1, None), (None, None, 1)]
    got = function([x], outs)(v)
    for g, want in zip(got, [v[None], v[:, :, None, None], v[:, None], v[:, :, None]]):
        np.testing.assert_array_equal(g, want)
    b = T.addbroadcast(x, 0)
    p = T.patternbroadcast(x, (False, True))
    assert b.type.shape == (1, None) and p.type.shape == (None, 1)
    np.testing.assert_array_equal(function([x], b + 1)(v[:1]), v[:1] + 1)
    np.testing.assert_array_equal(function([x], p * 2)(v[:, :1]), v[:, :1] * 2)
    with pytest.raises(ValueError, match="specify_shape"):
        function([x], b)(v)
    with pytest.raises(GraphError, match="cannot be made non-broadcastable"):
        T.patternbroadcast(T.drow("r"), (False, False))
    with pytest.raises(GraphError, match="has 2 dims but the pattern"):
        T.patternbroadcast(x, (True,))
