"""The call boundary a backend declares (theanine.boundary): function() takes inputs, stores
shared values and hands out results only through it, so core/compile names no device; and a
run-time error that already names the user's line is recognised by its mark, not its text."""

import ast
import pathlib

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.backend import Backend, get_backend
from theanine.backends.numpy.backend import NumpyBackend
from theanine.boundary import HOST_BOUNDARY, CallBoundary
from theanine.graph.basic import Apply, Op, graph_error, is_located, located

COMPILE_DIR = pathlib.Path(th.__file__).parent / "compile"
DEVICE_KITS = ("theanine.gpu", "theanine.backends", "pyopencl", "pycuda", "cupy")


# -- core/compile names no device ---------------------------------------------------------------


def _imported_modules(path: pathlib.Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def test_core_compile_imports_no_device_kit():
    files = sorted(COMPILE_DIR.glob("*.py"))
    assert {f.name for f in files} >= {"function.py", "shared.py"}
    found = {f"{f.name}: {m}" for f in files for m in _imported_modules(f)
             if m.startswith(DEVICE_KITS)}
    assert found == set()


# -- a backend's own boundary -------------------------------------------------------------------


class _Box:
    """A value kept 'elsewhere': the store below never hands out the array itself."""

    def __init__(self, array):
        self.array = array


class _BoxStore(CallBoundary):
    """A boundary that keeps shared values in its own memory (boxes) and counts the moves."""

    def __init__(self):
        self.uploads = self.downloads = 0

    def bind(self, env):
        super().bind(env)
        env.update(bd=self, unbox=self.unbox)

    def shared_value(self, var):
        return f"unbox({var}.device_value(bd))"

    def store_update(self, var, value, fresh):
        return f"{var}.set_device_value(bd, bd.box({value}))"

    @staticmethod
    def unbox(box):
        return box.array

    def box(self, array):
        return _Box(np.array(array))

    def upload(self, host):
        self.uploads += 1
        return _Box(np.array(host))

    def download(self, value):
        self.downloads += 1
        return np.array(value.array)

    def export(self, value, borrow):
        return value if borrow else _Box(np.array(value.array))

    def take(self, value, var, borrow):
        return value if isinstance(value, _Box) else None


class _BoxBackend(NumpyBackend):
    name = "numpy-boxed"

    def __init__(self):
        self.store = _BoxStore()

    def boundary(self):
        return self.store


def test_a_backend_declares_where_shared_values_live():
    backend = _BoxBackend()
    w = th.shared(np.arange(3.0), name="w")
    x = T.dvector("x")
    step = th.function([x], (w * x).sum(), updates=[(w, w * 2)], backend=backend)
    assert [float(step(np.ones(3))) for _ in range(3)] == [3.0, 6.0, 12.0]
    store = backend.store
    assert (store.uploads, store.downloads) == (1, 0)  # the value stayed in the store
    assert w._host is None and w._device[0] is store
    boxed = w.get_value(return_internal_type=True)
    assert isinstance(boxed, _Box) and boxed is not w._device[1]  # a copy unless borrowed
    np.testing.assert_array_equal(boxed.array, [0.0, 8.0, 16.0])
    np.testing.assert_array_equal(w.get_value(), [0.0, 8.0, 16.0])  # copied down once
    assert store.downloads == 1
    w.set_value(_Box(np.array([1.0, 1.0, 1.0])), borrow=True)  # the store takes its own kind
    assert w._host is None and float(step(np.ones(3))) == 3.0
    w.set_value(np.zeros(3))  # a host array replaces the stored value
    assert w._device is None and float(step(np.ones(3))) == 0.0
    assert store.uploads == 2


def test_host_backends_use_the_host_boundary_and_ignore_return_device():
    assert Backend().boundary() is HOST_BOUNDARY
    assert get_backend("numpy").boundary() is HOST_BOUNDARY
    assert get_backend("c").boundary() is HOST_BOUNDARY
    x = T.dvector("x")
    f = th.function([x], x * 2, backend="c", return_device=True)
    out = f(np.ones(2))
    assert type(out) is np.ndarray and out.tolist() == [2.0, 2.0]


# -- errors that already say where they come from -------------------------------------------


class _Raises(Op):
    """An op whose perform raises the exception it was made with."""

    def __init__(self, error):
        self.error = error

    def make_node(self, v):
        return Apply(self, [v], [v.type()])

    def perform(self, node, inputs):
        raise self.error


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_a_located_error_is_raised_as_it_is_and_an_unlocated_one_is_located(backend):
    x = T.dvector("x")
    f = th.function([x], _Raises(located(ValueError("located elsewhere")))(x), backend=backend)
    with pytest.raises(ValueError) as info:
        f(np.ones(2))
    assert str(info.value) == "located elsewhere"
    # "built at:" in a message is no mark: this error is located like any other
    g = th.function([x], _Raises(ValueError("it was built at: nowhere"))(x), backend=backend)
    with pytest.raises(ValueError) as info:
        g(np.ones(2))
    message = str(info.value)
    assert message.startswith("it was built at: nowhere\nApply node that caused the error: ")
    assert "The node was built at:\n  File " in message and "test_call_boundary.py" in message
    assert is_located(info.value)


def test_a_located_error_of_an_inner_function_is_not_located_again():
    x = T.dvector("x")
    inner = th.function([x], T.log(x) + x[3])  # index 3 is out of bounds for 2 values
    with pytest.raises(IndexError) as info:
        inner(np.ones(2))
    first = str(info.value)
    assert first.count("Apply node that caused the error") == 1 and is_located(info.value)
    outer = th.function([x], _Raises(info.value)(x))
    with pytest.raises(IndexError) as again:
        outer(np.ones(2))
    assert str(again.value) == first


def test_errors_that_name_the_users_line_are_marked():
    assert is_located(graph_error("bad graph"))
    w = th.shared(np.zeros(2), name="w")
    with pytest.raises(TypeError) as info:
        th.function([], [], updates=[(w, T.ivector("i"))])
    assert is_located(info.value) and info.value.args[0].count("built at:") == 1
    x = T.dvector("x")
    f = th.function([x], x / 0, mode="DebugMode")
    with pytest.raises(th.DebugModeError) as info, np.errstate(divide="ignore"):
        f(np.ones(2))
    assert is_located(info.value) and "Apply node that caused" not in str(info.value)
    c = th.function([x], x * 2, backend="c", trust_input=True)
    with pytest.raises(TypeError) as info:
        c(np.ones(2, dtype=np.float32))
    assert is_located(info.value) and "The call's inputs" not in str(info.value)
