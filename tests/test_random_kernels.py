"""Counter-based draws: the Philox4x32-10 reference against Random123's published known
answers, and the fused kernels of every backend against that reference (the same bits however
the loop is laid out, split among threads or broadcast)."""

from __future__ import annotations

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import backends, get_backend
from theanine.codegen.fusion import KernelStep, NodeStep, lower
from theanine.graph.basic import Constant
from theanine.tensor import philox
from theanine.tensor.random import FlatIndex, next_state, standard_normal, uniform01

# Random123's kat_vectors: counter words, key words -> output words
KAT = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
       ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
       ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
KEY, CTR = 0x0123456789ABCDEF, 0xFEDCBA9876543210


@pytest.mark.parametrize("counter,key,expected", KAT)
def test_philox_known_answers(counter, key, expected):
    assert tuple(int(w) for w in philox.philox4x32(counter, key)) == expected


def test_words_are_the_blocks_words_in_order():
    block = 0x1_0000_0003  # both halves of the block number matter
    out = philox.philox4x32((block & 0xFFFFFFFF, block >> 32, CTR & 0xFFFFFFFF, CTR >> 32),
                            (KEY & 0xFFFFFFFF, KEY >> 32))
    first = np.arange(4 * block, 4 * block + 4, dtype=np.uint64)
    assert philox.words(KEY, CTR, first, 1)[:, 0].tolist() == [int(w) for w in out]
    w = philox.words(KEY, CTR, np.uint64(4 * block), 4)
    assert w.tolist() == [int(x) for x in out]
    u = philox.draw("uniform", "float32", KEY, CTR, first)
    assert u.tolist() == [(int(x) >> 8) / 2 ** 24 for x in out]


def _state(key=KEY, ctr=CTR):
    return th.shared(np.array([key, ctr], dtype=np.uint64))


def _reference(kind, dtype, shape, key=KEY, ctr=CTR):
    n = int(np.prod(shape))
    return philox.draw(kind, dtype, key, ctr, np.arange(n, dtype=np.uint64)).reshape(shape)


BACKENDS = ["numpy", "c", "opencl"]


def _backend(name):
    if name == "opencl":
        ok, why = backends()["opencl"].available()
        if not ok:
            pytest.skip(f"OpenCL: {why}")
    return name


@pytest.mark.parametrize("backend", BACKENDS)
def test_draws_equal_the_reference_however_the_loop_runs(backend):
    s = _state()
    x = T.fmatrix("x")
    # (1001, 1003): the C loop splits rows among threads, so runs start mid-block
    big = uniform01(s, (1001, 1003), "float32")
    col = uniform01(s, (5, 1), "float64")  # broadcast along the loop's second axis
    z = standard_normal(s, (7, 3), "float32")
    f = th.function([x], [big, x + col, z.T * 1, uniform01(s, x.shape, "float32") * 2],
                    backend=_backend(backend))
    xv = np.zeros((5, 6), np.float32)
    got_big, got_col, got_zt, got_x = f(xv)
    np.testing.assert_array_equal(got_big, _reference("uniform", "float32", (1001, 1003)))
    np.testing.assert_array_equal(got_col, np.broadcast_to(
        _reference("uniform", "float64", (5, 1)), (5, 6)))
    np.testing.assert_allclose(got_zt, _reference("normal", "float32", (7, 3)).T, rtol=2e-6,
                               atol=2e-6)
    np.testing.assert_array_equal(got_x, _reference("uniform", "float32", (5, 6)) * 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_draw_summed_in_a_reduction_kernel(backend):
    s = _state()
    f = th.function([], [uniform01(s, (3, 1000), "float64").sum(axis=1),
                         standard_normal(s, (4097,), "float64").sum()],
                    backend=_backend(backend))
    rows, total = f()
    np.testing.assert_allclose(rows, _reference("uniform", "float64", (3, 1000)).sum(axis=1))
    np.testing.assert_allclose(total, _reference("normal", "float64", (4097,)).sum())


@pytest.mark.parametrize("backend", ["c", "opencl"])
def test_a_dropout_is_one_kernel_with_no_index_array(backend):
    """The draw fuses with what reads it; its index is the loop position, never an array."""
    s = _state()
    x = T.fmatrix("x")
    out = x * T.cast(uniform01(s, x.shape, "float32") < np.float32(0.5), "float32")
    f = th.function([x], out, updates=[(s, next_state(s))], backend=_backend(backend))
    steps = lower(f.fgraph, get_backend(backend).can_fuse, lambda node: False,
                  index_operands=True) if backend == "c" else None
    if steps is not None:
        kernels = [k for k in steps if isinstance(k, KernelStep)
                   and any(n.op.scalar_op.name.startswith("random_") for n in k.nodes)]
        assert len(kernels) == 1 and kernels[0].kernel.index_inputs
        assert not [k for k in steps if isinstance(k, NodeStep) and
                    isinstance(k.node.op, FlatIndex)]
    xv = np.full((64, 33), 3, np.float32)
    expected = xv * (_reference("uniform", "float32", (64, 33)) < 0.5)
    np.testing.assert_array_equal(f(xv), expected)
    assert s.get_value()[1] == CTR + 1
    np.testing.assert_array_equal(
        f(xv), xv * (_reference("uniform", "float32", (64, 33), ctr=CTR + 1) < 0.5))


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_negative_size_at_run_time_is_named(backend):
    n = T.lscalar("n")
    f = th.function([n], uniform01(_state(), (n, 2), "float32"), backend=backend)
    assert f(0).shape == (0, 2)
    with pytest.raises(ValueError, match="size must not have negative lengths"):
        f(-3)


def test_a_negative_constant_size_is_refused_when_the_graph_is_built():
    with pytest.raises(Exception, match="negative lengths"):
        uniform01(_state(), (2, -1), "float32")


def test_a_constant_size_is_never_folded_into_an_index_array():
    """FlatIndex opts out of constant folding: a draw of constant size keeps taking its index
    from the loop position."""
    s = _state()
    f = th.function([], uniform01(s, (1000, 1000), "float32") * 2, backend="c")
    assert not [v for n in f.fgraph.nodes for v in n.inputs
                if isinstance(v, Constant) and v.dtype == "uint64" and v.ndim == 2]
    assert any(isinstance(n.op, FlatIndex) for n in f.fgraph.nodes)
    np.testing.assert_array_equal(f(), _reference("uniform", "float32", (1000, 1000)) * 2)


def test_a_program_without_draws_has_no_random_helpers():
    """The random helpers (and their intrinsics header) cost C compile time: only programs with
    draws include them."""
    import theanine.backends.cpu_c.backend as c_backend

    sources = []
    real = c_backend.render_program

    def spy(*args, **kwargs):
        prog = real(*args, **kwargs)
        sources.append(prog.source)
        return prog

    x = T.dvector("x")
    c_backend.render_program, saved = spy, c_backend.render_program
    try:
        th.function([x], T.exp(x) * 2 + 1, backend="c")
        th.function([x], x * uniform01(_state(), x.shape, "float64"), backend="c")
    finally:
        c_backend.render_program = saved
    plain, drawing = sources
    assert "th_philox" not in plain and "philox.h" not in plain
    assert "th_philox_fill" in drawing and '#include "philox.h"' in drawing
