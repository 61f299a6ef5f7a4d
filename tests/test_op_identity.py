"""Scalar ops are told apart by what they compute, not by their name: an op of a user's named
like one of theanine's (or like a cast, or like another user op) keeps its own meaning on every
backend, in merging, in rewrites and in kernel lookup."""

import copy

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.tensor.elemwise import Elemwise, ScalarOp
from theanine.tensor.scalar_ops import SCALAR_OPS, cast_op, cast_target, is_builtin


def _same_dtype(*dtypes):
    return dtypes[0]


def _pass_through(inputs, out, gz):
    return [gz]


def _user_op(name: str, impl) -> Elemwise:
    return Elemwise(ScalarOp(name, 1, impl, _same_dtype, _pass_through))


def _backend(name: str) -> str:
    ok, why = backends()[name].available()
    if not ok:
        pytest.skip(f"{name} backend unavailable: {why}")
    return name


@pytest.mark.parametrize("backend", ["numpy", "c", "opencl"])
def test_a_user_op_named_exp_computes_itself_next_to_exp(backend):
    """Before: the two merged, so T.exp computed the user's op (or the user's op got the
    built-in exp kernel), and `exp(x) - 1` -> expm1 fired on the user's op."""
    user_exp = _user_op("exp", lambda x: x * 2 + 1)
    x = T.dvector("x")
    f = th.function([x], [user_exp(x), T.exp(x), user_exp(x) - 1, T.exp(x) - 1],
                    backend=_backend(backend))
    v = np.array([-1.5, 0.0, 0.25, 3.0])
    mine, real, mine_m1, real_m1 = f(v)
    np.testing.assert_allclose(mine, v * 2 + 1, rtol=1e-15)
    np.testing.assert_allclose(real, np.exp(v), rtol=1e-15)
    np.testing.assert_allclose(mine_m1, v * 2, rtol=1e-15)
    np.testing.assert_allclose(real_m1, np.expm1(v), rtol=1e-15)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_user_op_named_like_a_cast_is_not_a_cast(backend):
    """Before: `cast_float32` on a float32 input was removed as a useless cast, and the C
    renderer printed it as a conversion."""
    fake_cast = _user_op("cast_float32", lambda x: x + 1)
    x = T.fvector("x")
    f = th.function([x], [fake_cast(x), fake_cast(T.exp(x)) * 2], backend=_backend(backend))
    v = np.array([0.5, -2.0, 8.0], dtype="float32")
    plus_one, doubled = f(v)
    np.testing.assert_array_equal(plus_one, v + 1)
    np.testing.assert_allclose(doubled, (np.exp(v) + 1) * 2, rtol=1e-6)
    assert cast_target(fake_cast.scalar_op) is None
    assert cast_target(cast_op("float32")) == "float32"


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_two_ops_sharing_a_name_do_not_merge(backend):
    plus = _user_op("myop", lambda x: x + 1)
    times = _user_op("myop", lambda x: x * 3)
    assert plus != times and plus.scalar_op != times.scalar_op
    x = T.dvector("x")
    f = th.function([x], [plus(x), times(x)], backend=_backend(backend))
    v = np.array([1.0, 2.0, -4.0])
    a, b = f(v)
    np.testing.assert_array_equal(a, v + 1)
    np.testing.assert_array_equal(b, v * 3)


def test_the_same_op_built_twice_still_merges_and_builtins_equal_their_copies():
    def impl(x):
        return x + 1

    one, two = _user_op("myop", impl), _user_op("myop", impl)
    assert one == two and hash(one) == hash(two)
    assert cast_op("int16") is cast_op("int16")
    exp = SCALAR_OPS["exp"]
    copied = copy.copy(exp)
    assert copied is not exp and copied == exp and hash(copied) == hash(exp)
    assert is_builtin(copied, "exp") and not is_builtin(_user_op("exp", np.exp).scalar_op)
