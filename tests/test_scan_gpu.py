"""Loops and conditionals on the GPU backends (OpenCL here, on PoCL; CUDA on a GPU machine):
values and gradients equal the reference's, and the loop bodies of an RNN, its BPTT and an
LSTM-style step run with their states on the device (no node of a loop body runs on host
copies of device values)."""

import re

import numpy as np
import pytest
from test_scan_c import ERRORS, PROGRAMS, rnn_training_step, slicing_program

import theanine as theano
import theanine.tensor as T
from theanine.backend import backends
from theanine.gpu.plans import PlanKind
from theanine.ifelse import ifelse
from theanine.scan_module import until

GPUS = [b for b in ("opencl", "cuda") if b in backends() and backends()[b].available()[0]]
pytestmark = pytest.mark.skipif(not GPUS, reason="no OpenCL platform and no CUDA device")


@pytest.fixture(params=GPUS or ["opencl"])
def gpu(request):
    """Each available GPU backend (OpenCL on PoCL here; CUDA too on a GPU machine)."""
    return request.param


def program_of(f):
    return f._run.__self__


def round_trips(prog) -> list:
    """The nodes of loop bodies and branches (at any depth) run on host copies."""
    found = []
    for sub in prog.sub_programs:
        found += [s.node for p, s in zip(sub.plans, sub.steps)
                  if p.kind is PlanKind.HOST and not p.host_values]
        found += round_trips(sub)
    assert found == prog.loop_host_nodes  # what the program reports is what it planned
    return found


def check_same(gpu, inputs, outputs, *values, rtol=1e-10):
    fg = theano.function(inputs, outputs, backend=gpu)
    fn = theano.function(inputs, outputs, backend="numpy")
    for g, w in zip(fg(*values), fn(*values)):
        assert np.asarray(g).dtype == np.asarray(w).dtype
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol)
    assert program_of(fg).sub_programs  # the loop body was compiled for the device
    return fg


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_values_and_gradients_match_the_reference(gpu, program):
    inputs, outputs, values = program()
    outs = outputs if isinstance(outputs, list) else [outputs]
    check_same(gpu, inputs, outs, *values)
    cost = sum((o ** 2).sum() for o in outs)
    floats = [v for v in inputs if v.dtype.startswith("float")]
    check_same(gpu, inputs, T.grad(cost, floats), *values, rtol=1e-9)


def test_until_kept_steps_and_no_step(gpu):
    x = T.dscalar("x")
    out, _ = theano.scan(lambda s: (s * 2, until(s * 2 > x)), outputs_info=T.constant(1.0),
                         n_steps=50)
    check_same(gpu, [x], [out], 100.0)
    v = T.dvector("v")
    acc, _ = theano.scan(lambda a, s2, s1: s1 + s2 * 0.5 + a, sequences=v,
                         outputs_info=dict(initial=T.constant(np.array([1.0, 2.0])),
                                       taps=[-2, -1]))
    check_same(gpu, [v], [acc[-1], acc[-3:]], np.linspace(0, 1, 11))
    check_same(gpu, [v], [acc[-1:], acc], np.zeros(0))


def test_rnn_and_lstm_loops_stay_on_the_device(gpu):
    inputs, cost, params, grads, values = rnn_training_step()
    f = theano.function(inputs, [cost, *grads], backend=gpu)
    ref = theano.function(inputs, [cost, *grads], backend="numpy")
    for g, w in zip(f(*values), ref(*values)):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    assert len(program_of(f).sub_programs) == 2 and round_trips(program_of(f)) == []
    inputs, outputs, values = slicing_program()
    lstm = T.grad(sum((o ** 2).sum() for o in outputs), [inputs[0], inputs[2]])
    f = check_same(gpu, inputs, lstm, *values)
    assert round_trips(program_of(f)) == []


def test_ifelse_branches_run_on_the_device(gpu):
    a, x = T.dscalar("a"), T.dvector("x")
    z = ifelse(T.gt(a, 0), [T.exp(x), x], [x * 2, T.sin(x)])
    f = check_same(gpu, [a, x], z, 1.0, np.arange(3.0))
    check_same(gpu, [a, x], z, -1.0, np.arange(3.0))
    assert round_trips(program_of(f)) == []
    got = f(1.0, np.arange(3.0))[1]  # a branch value that is an input comes back a copy
    np.testing.assert_allclose(np.asarray(got), np.arange(3.0))


def test_float32_states_stay_float32(gpu):
    x = T.fmatrix("x")
    out, _ = theano.scan(lambda a, s: s * np.float32(0.5) + T.exp(a), sequences=x,
                         outputs_info=T.zeros(3, dtype="float32"))
    check_same(gpu, [x], [out], np.zeros((0, 3), "float32"))
    value = np.linspace(-1, 1, 12).reshape(4, 3).astype("float32")
    f = check_same(gpu, [x], [out, T.grad((out ** 2).sum(), x)], value, rtol=1e-5)
    assert round_trips(program_of(f)) == []
    # by hand: s_t = s_{t-1} / 2 + exp(x_t)
    want, s = [], np.zeros(3, "float32")
    for row in value:
        s = s * np.float32(0.5) + np.exp(row)
        want.append(s)
    np.testing.assert_allclose(f(value)[0], want, rtol=1e-6)


def test_symbolic_n_steps_and_kept_ring(gpu):
    n, v = T.iscalar("n"), T.dvector("v")
    acc, _ = theano.scan(lambda a, s: s * 0.5 + a, sequences=v, outputs_info=T.constant(1.0),
                         n_steps=n)
    values = np.linspace(0, 1, 7)
    for steps in (0, 1, 4, 7):
        check_same(gpu, [n, v], [acc], steps, values)
    f = check_same(gpu, [n, v], [acc[-1], acc[-2:]], 5, values)
    (loop,) = [nd for nd in f.maker.fgraph.nodes if "Scan" in str(nd.op)]
    assert loop.op.keep == (2,)  # only the last two steps are kept: a ring on the device
    s = 1.0
    for a in values[:5]:
        s = s * 0.5 + a
    np.testing.assert_allclose(f(5, values)[0], s)


@pytest.mark.parametrize("build, values, message", ERRORS)
def test_errors_are_the_references(gpu, build, values, message):
    x = T.dvector("x")
    out = build(x)
    for backend in (gpu, "numpy"):
        f = theano.function([x], out, backend=backend)
        with pytest.raises(ValueError, match=re.escape(message)):
            f(*values)


def test_cuda_runs_loops_and_branches_with_the_shared_code():
    from theanine.ifelse import LazyIfElse
    from theanine.scan_module.op import Scan

    for op_class in (Scan, LazyIfElse):
        cuda = backends()["cuda"].impls.lookup(op_class)
        opencl = backends()["opencl"].impls.lookup(op_class)
        assert cuda.fn is opencl.fn and cuda.fn.__module__ == "theanine.gpu.scan"
