"""Saving models with pickle: shared variables, graphs (every op of the library) and compiled
functions round-trip in this process and in a new one, on numpy, c and opencl; compiled code
is rebuilt or taken from the cache, never pickled; a missing device falls back to the CPU."""

import copy
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import theanine as th
import theanine.tensor as T
from theanine.backend import backends
from theanine.compile.pickling import DeviceFallbackWarning, load_backend
from theanine.graph.traversal import graph_inputs, toposort
from theanine.tensor.elemwise import Elemwise, ScalarOp
from theanine.tensor.scalar_ops import SCALAR_OPS, cast_op, ufunc_rule
from theanine.testing.cases import all_cases, case_dtypes, graph_op_keys
from theanine.testing.meta import COMPILED_FORMS, library_op_keys

BACKENDS = ["numpy", "c", "opencl"]


def _backend(name):
    ok, why = backends()[name].available()
    if not ok:
        pytest.skip(f"backend {name} unavailable: {why}")
    return name


def _logistic_regression():
    """The classifier of the classic deep-learning tutorial, as a dict of what it holds:
    shared parameters and symbolic expressions (a cast included)."""
    x = T.dmatrix("x")
    y = T.ivector("y")
    W = th.shared(np.linspace(-1, 1, 12).reshape(4, 3), name="W")
    b = th.shared(np.array([0.1, -0.2, 0.3]), name="b")
    p_y_given_x = T.nnet.softmax(T.dot(x, W) + b)
    y_pred = T.argmax(p_y_given_x, axis=1)
    nll = -T.mean(T.log(p_y_given_x)[T.arange(y.shape[0]), y])
    errors = T.mean(T.cast(T.neq(y_pred, y), "float32"))
    gW, gb = T.grad(nll, [W, b])
    return dict(x=x, y=y, W=W, b=b, p_y_given_x=p_y_given_x, y_pred=y_pred, nll=nll,
                errors=errors, gW=gW, gb=gb)


def _train_step(m, backend):
    return th.function([m["x"], m["y"]], [m["nll"], m["errors"]],
                       updates=[(m["W"], m["W"] - 0.5 * m["gW"]),
                                (m["b"], m["b"] - 0.5 * m["gb"])], backend=backend)


DATA = (np.random.default_rng(0).normal(size=(6, 4)), np.array([0, 1, 2, 2, 1, 0], np.int32))


def _run_in_new_process(tmp_path, payload, script, env=None):
    """Unpickle `payload` in a new Python process as `saved` and run `script` there; what it
    puts in the dict `out` comes back, with the warnings loading gave in out["warnings"]."""
    src, dst = tmp_path / "saved.pkl", tmp_path / "out.pkl"
    src.write_bytes(payload)
    code = ("import pickle, warnings\nimport numpy as np\nimport theanine.tensor as T\n"
            "import theanine as th\nout = {}\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            f"    with open({str(src)!r}, 'rb') as fh:\n        saved = pickle.load(fh)\n"
            "out['warnings'] = [(w.category.__name__, str(w.message)) for w in caught]\n"
            + textwrap.dedent(script)
            + f"\nwith open({str(dst)!r}, 'wb') as fh:\n    pickle.dump(out, fh)\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **(env or {})}, timeout=300)
    assert res.returncode == 0, res.stderr
    return pickle.loads(dst.read_bytes())


# -- shared variables --------------------------------------------------------------------------

def test_shared_variable_round_trip_keeps_value_type_and_options():
    w = th.shared(np.arange(6, dtype=np.float32).reshape(2, 3), name="w", strict=True,
                  broadcastable=(False, False))
    w.set_value(np.full((2, 3), 7, np.float32))
    w2 = pickle.loads(pickle.dumps(w))
    assert type(w2) is type(w) and w2.name == "w" and w2.type == w.type and w2.strict
    np.testing.assert_array_equal(w2.get_value(), np.full((2, 3), 7, np.float32))
    w2.set_value(np.zeros((2, 3), np.float32))  # a value of its own
    np.testing.assert_array_equal(w.get_value(), np.full((2, 3), 7, np.float32))
    with pytest.raises(TypeError, match="strict"):
        w2.set_value(np.zeros((2, 3)))


def test_shared_variable_an_opencl_function_updated_pickles_its_current_value():
    _backend("opencl")
    w = th.shared(np.arange(3.0), name="w")
    step = th.function([], [], updates=[(w, w * 2)], backend="opencl")
    step()
    step()
    assert w._device is not None  # the value lives on the device
    w2 = pickle.loads(pickle.dumps(w))
    np.testing.assert_array_equal(w2.get_value(), [0.0, 4.0, 8.0])
    assert w2._device is None and w2._store is None


# -- graphs ------------------------------------------------------------------------------------

def test_graph_round_trip_keeps_every_node_and_variable_one_object():
    m = _logistic_regression()
    m2 = pickle.loads(pickle.dumps(m))
    # the loaded expressions hang off the loaded inputs and shared variables
    assert set(graph_inputs([m2["nll"], m2["gW"]])) >= {m2["x"], m2["y"], m2["W"], m2["b"]}
    assert not set(graph_inputs([m2["nll"]])) & {m["x"], m["W"]}
    # an intermediate is one object across expressions: gradients through it connect
    assert any(m2["p_y_given_x"] in n.inputs for n in toposort([m2["nll"]]))
    T.grad(m2["nll"], m2["p_y_given_x"])
    for a, b in zip(toposort([m["nll"], m["gW"]]), toposort([m2["nll"], m2["gW"]])):
        assert type(a.op) is type(b.op) and a.op == b.op
        assert [v.type for v in a.outputs] == [v.type for v in b.outputs]
        assert [(v.owner, v.index) for v in b.outputs] == [(b, i) for i in range(len(b.outputs))]
    # the loaded graph compiles and computes what the original does
    f = th.function([m["x"], m["y"]], [m["nll"], m["gW"]], backend="numpy")
    f2 = th.function([m2["x"], m2["y"]], [m2["nll"], m2["gW"]], backend="numpy")
    for a, b in zip(f(*DATA), f2(*DATA)):
        np.testing.assert_array_equal(a, b)


def test_a_graph_deeper_than_the_recursion_limit_pickles():
    x = T.dvector("x")
    y = x
    for i in range(sys.getrecursionlimit() + 200):
        y = T.tanh(y) if i % 2 else y * 0.5
    y2 = pickle.loads(pickle.dumps(y))
    nodes, nodes2 = toposort([y]), toposort([y2])
    assert len(nodes2) == len(nodes) and graph_inputs([y2])[-1].name == "x"
    assert [str(n.op) for n in nodes2] == [str(n.op) for n in nodes]


def test_pickling_every_step_of_a_chain_costs_about_as_much_as_its_end():
    x = T.dvector("x")
    steps = [x]
    for _ in range(1000):
        steps.append(T.tanh(steps[-1]))
    payload = pickle.dumps(steps)
    assert len(payload) < 1.2 * len(pickle.dumps(steps[-1]))  # each node pickled once
    loaded = pickle.loads(payload)
    assert all(b.owner.inputs[0] is a for a, b in zip(loaded, loaded[1:]))


def test_a_variable_pickles_without_its_compiled_eval_cache():
    x = T.dvector("x")
    y = T.exp(x)
    np.testing.assert_allclose(y.eval({x: [0.0, 1.0]}), np.exp([0.0, 1.0]), rtol=1e-15)
    assert y.tag["_eval_cache"]
    payload = pickle.dumps((x, y))
    assert b"_load_function" not in payload
    x2, y2 = pickle.loads(payload)
    assert "_eval_cache" not in y2.tag
    np.testing.assert_allclose(y2.eval({x2: [2.0]}), np.exp([2.0]), rtol=1e-15)


def test_copying_a_node_or_variable_leaves_the_graph_alone():
    x = T.dvector("x")
    y = T.exp(x)
    node = y.owner
    assert copy.copy(y).owner is node
    copy.copy(node)
    assert y.owner is node


def test_builtin_scalar_ops_pickle_by_name_others_by_value():
    assert pickle.loads(pickle.dumps(SCALAR_OPS["exp"])) is SCALAR_OPS["exp"]
    assert len(pickle.dumps(SCALAR_OPS["exp"])) < 120
    assert pickle.loads(pickle.dumps(cast_op("int16"))) is cast_op("int16")
    copied = copy.copy(SCALAR_OPS["exp"])  # copying still makes a new op
    assert copied is not SCALAR_OPS["exp"] and copied == SCALAR_OPS["exp"]
    assert copied.impl is np.exp
    cube_root = ScalarOp("my_cbrt", 1, np.cbrt, ufunc_rule(np.cbrt), None)
    loaded = pickle.loads(pickle.dumps(cube_root))
    assert loaded.impl is np.cbrt and loaded.dtype_rule == ufunc_rule(np.cbrt)
    x = T.dvector("x")
    out = th.function([x], Elemwise(loaded)(x), backend="numpy")([8.0, -27.0])
    np.testing.assert_array_equal(out, np.cbrt([8.0, -27.0]))


def test_the_loaded_graphs_of_all_cases_use_every_op_of_the_library():
    keys = set()
    for case in all_cases():
        for dtype in case_dtypes(case):
            inputs, outputs = case.graph(dtype)
            _, loaded = pickle.loads(pickle.dumps((inputs, outputs)))
            keys |= graph_op_keys(loaded)
    # an op only compiling makes (LazyIfElse) counts through the op it is made of
    keys |= {COMPILED_FORMS[k] for k in keys if k in COMPILED_FORMS}
    assert library_op_keys() - keys == set()


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.name)
def test_every_op_survives_a_round_trip(case):
    """Each conformance case's graph, with its gradient, loaded from a pickle computes exactly
    what the original computes (on the reference backend)."""
    dtype = case.dtypes[0]
    inputs, outputs = case.graph(dtype)
    wrt = [i for i in inputs if np.dtype(i.dtype).kind == "f"]
    floats = [o for o in outputs if np.dtype(o.dtype).kind == "f"]
    if case.grad and wrt and floats:
        cost = sum(T.sum(o) for o in floats)
        outputs = outputs + T.grad(cost, wrt, disconnected_inputs="ignore")
    inputs2, outputs2 = pickle.loads(pickle.dumps((inputs, outputs)))
    f = th.function(inputs, outputs, backend="numpy", on_unused_input="ignore")
    f2 = th.function(inputs2, outputs2, backend="numpy", on_unused_input="ignore")

    @settings(max_examples=3, database=None)
    @given(st.data())
    def same(data):
        values = case.draw_values(data, dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = f(*values)
            got = f2(*values)
        for a, b in zip(expected, got):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)

    same()


# -- compiled functions ------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_function_round_trip_keeps_inputs_defaults_and_updates(protocol):
    x = T.dvector("x")
    acc = th.shared(np.zeros(2), name="acc")
    scale = T.dscalar("scale")
    f = th.function([x, th.In(scale, value=2.0)], acc + scale * x,
                    updates={acc: acc + x}, backend="numpy", name="accumulate")
    f([1.0, 1.0])
    f2, acc2 = pickle.loads(pickle.dumps((f, acc), protocol=protocol))
    assert f2.name == "accumulate" and acc2 is not acc
    np.testing.assert_array_equal(f2(x=[1.0, 2.0]), [3.0, 5.0])  # default scale 2
    np.testing.assert_array_equal(acc2.get_value(), [2.0, 3.0])  # the loaded variable updated
    np.testing.assert_array_equal(acc.get_value(), [1.0, 1.0])  # not the original
    with pytest.raises(TypeError, match="missing input 0"):
        f2()


@pytest.mark.parametrize("backend", BACKENDS)
def test_function_and_model_round_trip_in_a_new_process(backend, tmp_path):
    _backend(backend)
    m = _logistic_regression()
    step = _train_step(m, backend)
    step(*DATA)  # on a device backend, W and b now live in device memory
    payload = pickle.dumps({"step": step, "model": m})
    assert b"\x7fELF" not in payload  # no machine code
    # what the original computes next: two more steps
    expected = [step(*DATA) for _ in range(2)]
    expected_W = m["W"].get_value()
    out = _run_in_new_process(tmp_path, payload, f"""
        step, m = saved["step"], saved["model"]
        data = (np.random.default_rng(0).normal(size=(6, 4)),
                np.array([0, 1, 2, 2, 1, 0], np.int32))
        out["backend"] = step.backend.name
        out["same_shared"] = {{id(v) for v in step.shared}} == {{id(m["W"]), id(m["b"])}}
        out["results"] = [step(*data) for _ in range(2)]
        out["W"] = m["W"].get_value()
        predict = th.function([m["x"]], m["y_pred"], backend={backend!r})
        out["pred"] = predict(data[0])
    """)
    assert out["backend"] == backend and out["same_shared"] and out["warnings"] == []
    for (nll, err), (nll2, err2) in zip(expected, out["results"]):
        np.testing.assert_allclose(nll2, nll, rtol=1e-12)
        assert err2 == err and err2.dtype == np.float32
    np.testing.assert_allclose(out["W"], expected_W, rtol=1e-12)
    logits = DATA[0] @ expected_W + m["b"].get_value()
    np.testing.assert_array_equal(out["pred"], np.argmax(logits, axis=1))


def test_loading_a_c_function_builds_its_code_or_takes_it_from_the_cache(tmp_path):
    _backend("c")
    x = T.dvector("x")
    f = th.function([x], T.exp(x) * 3.0 + 0.25, backend="c")
    payload = pickle.dumps(f)
    assert b"\x7fELF" not in payload and len(payload) < 20_000
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    script = "out['y'] = saved([0.0, 1.0])"
    env = {"THEANINE_CACHE_DIR": str(cache)}

    def built():
        return sorted(p.name for p in cache.rglob("*.so"))

    (tmp_path / "a").mkdir()
    out = _run_in_new_process(tmp_path / "a", payload, script, env)
    np.testing.assert_allclose(out["y"], np.exp([0.0, 1.0]) * 3.0 + 0.25, rtol=1e-15)
    first = built()
    assert len(first) == 1  # compiled in the new process, into its (empty) cache
    (tmp_path / "b").mkdir()
    _run_in_new_process(tmp_path / "b", payload, script, env)
    assert built() == first  # the second load took it from the cache


def test_a_missing_backend_falls_back_to_the_cpu_with_a_warning():
    with pytest.warns(DeviceFallbackWarning, match="'tpu:0'.*CPU backend"):
        backend = load_backend("tpu:0")
    assert backend.name in ("c", "numpy")


def test_a_missing_opencl_device_falls_back_to_the_cpu():
    _backend("opencl")
    with pytest.warns(DeviceFallbackWarning, match="'opencl:9:0'.*no OpenCL device"):
        backend = load_backend("opencl:9:0")
    assert backend.name in ("c", "numpy")


def test_an_opencl_function_loads_on_the_cpu_where_opencl_is_missing(tmp_path):
    _backend("opencl")
    m = _logistic_regression()
    step = _train_step(m, "opencl")
    step(*DATA)
    payload = pickle.dumps({"step": step, "model": m})
    expected = step(*DATA)
    expected_W = m["W"].get_value()
    # no OpenCL there: no ICD files, and no opencl plugin (pyopencl's wheel finds its bundled
    # PoCL whatever OCL_ICD_VENDORS says, so the plugin list is what removes the backend)
    empty = tmp_path / "no-vendors"
    empty.mkdir()
    out = _run_in_new_process(tmp_path, payload, """
        from theanine.backend import backends
        out["opencl_registered"] = "opencl" in backends()
        step, m = saved["step"], saved["model"]
        out["backend"] = step.backend.name
        data = (np.random.default_rng(0).normal(size=(6, 4)),
                np.array([0, 1, 2, 2, 1, 0], np.int32))
        out["result"] = step(*data)
        out["W"] = m["W"].get_value()
    """, env={"THEANINE_PLUGINS": "numpy,cpu_c", "OCL_ICD_VENDORS": str(empty)})
    assert not out["opencl_registered"] and out["backend"] in ("c", "numpy")
    [(category, message)] = out["warnings"]
    assert category == "DeviceFallbackWarning" and "'opencl'" in message
    np.testing.assert_allclose(out["result"][0], expected[0], rtol=1e-12)
    assert out["result"][1] == expected[1]
    np.testing.assert_allclose(out["W"], expected_W, rtol=1e-12)
