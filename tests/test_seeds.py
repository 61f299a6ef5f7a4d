"""The seed tutorials, run as the programs in examples/, print the numbers the seeds show."""

import os
import re
import runpy

import numpy as np
import pytest

EXAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "examples")


def _run(name: str, capsys) -> tuple[dict, str]:
    namespace = runpy.run_path(os.path.join(EXAMPLES, name), run_name="__main__")
    return namespace, capsys.readouterr().out


def test_seed_001_derivative_and_xor_network(capsys):
    np.random.seed(1)
    ns, out = _run("seed_001_xor_network.py", capsys)
    lines = out.splitlines()
    assert lines[0] == "<class 'theanine.tensor.variable.TensorVariable'>"
    assert lines[1] == "[array(0.60268197)]"
    assert float(ns["f"](10)[0]) == pytest.approx(0.602681965908778, rel=1e-15)
    # the seed shows 4.347404090286685, computed with libm's exp; NumPy's differs by one ulp
    assert float(lines[2]) == pytest.approx(4.347404090286685, rel=4e-16)
    costs = [float(v) for v in re.findall(r"^cost: (\S+)$", out, re.M)]
    assert len(costs) == 20 and costs[-1] < 0.01 and costs[-1] < costs[0] / 20
    outputs = [float(v) for v in lines[-4:]]  # [0,1] [1,1] [1,0] [0,0]
    assert outputs[0] > 0.9 and outputs[2] > 0.9
    assert outputs[1] < 0.1 and outputs[3] < 0.1


def test_seed_002_arithmetic_gradients_and_regression(capsys):
    np.random.seed(2)
    ns, out = _run("seed_002_intro_linear_regression.py", capsys)
    assert "[[ 58.  64.]\n [139. 154.]]" in out
    assert "[[ 5. 12.]\n [21. 32.]]" in out
    for expected in ["7.0", "32.0", "15.0", "8.0", "14.0", "22.0", "[-4.  6.]",
                     "[ 1.  4. 48.]", "[array(15.), array(8.)]", "[5. 7. 9.]",
                     "[ 6.  8. 10.  7.  7.  7.]"]:
        assert f"\n{expected}\n" in out, expected
    errs = [float(v) for v in re.findall(r"^err : \[array\((\S+)\)\]$", out, re.M)]
    assert len(errs) == 10000 and errs[-1] < 1e-5 and errs[-1] < errs[0]
    # gradient descent recovers the generating weights
    np.testing.assert_allclose(ns["w"].get_value(), ns["x_gen"], atol=2e-3)


def test_seed_000_tutorial_and_mlp(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    from examples_runner import main

    ns = main([os.path.join(EXAMPLES, "seed_000_theano_tutorial.py"), "--out", str(tmp_path)])
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "<class 'theanine.tensor.variable.TensorVariable'>"
    assert lines[1] == "TensorType(float64, scalar)"
    assert "foo" in lines[2] and "**" in lines[2]
    assert lines[3] == "9.0" and lines[4] == "9.0" and lines[5] == "9.0"
    assert "[array([18., 37.]), array(91.)]" in out
    assert "[array([14., 32.]), array(91.)]" in out
    assert "[[ 9. 16.]\n [ 4.  1.]]" in out  # function_1() before the update
    assert "[[4. 9.]\n [1. 0.]]" in out  # after subtracting ones
    np.testing.assert_array_equal(ns["bar_grad"].eval({ns["foo"]: 10}), 20.0)
    assert "[[9. 8. 7.]\n [4. 5. 6.]]" in out  # the Jacobian of A x + b is A
    assert "\n5.0\nnan\nDebugMode raised: DebugModeError\n" in out
    assert "\ncpu\nfloat64\n" in out
    assert "TensorType(float64, vector)" in out and "TensorType(float32, vector)" in out
    # the MLP learns to separate the two clouds ...
    assert ns["accuracy"] > 0.8
    assert len(list(tmp_path.glob("figure_*.png"))) == 21
    # ... and its 20 momentum steps equal the same training written by hand in NumPy
    X, y = ns["X"], ns["y"]
    W = [w.astype(float) for w in ns["W_init"]]
    b = [v.reshape(-1, 1).astype(float) for v in ns["b_init"]]
    vel = [np.zeros_like(p) for p in (W[0], b[0], W[1], b[1])]
    for _ in range(20):
        h = 1 / (1 + np.exp(-(W[0] @ X + b[0])))
        o = 1 / (1 + np.exp(-(W[1] @ h + b[1])))
        cost = np.sum((o - y) ** 2)
        d2 = 2 * (o - y) * o * (1 - o)
        d1 = (W[1].T @ d2) * h * (1 - h)
        grads = [d1 @ X.T, d1.sum(1, keepdims=True), d2 @ h.T, d2.sum(1, keepdims=True)]
        params = [W[0], b[0], W[1], b[1]]
        new = [p - 0.01 * v for p, v in zip(params, vel)]
        vel = [0.9 * v + 0.1 * g for v, g in zip(vel, grads)]
        W[0], b[0], W[1], b[1] = new
    np.testing.assert_allclose(float(ns["current_cost"]), cost, rtol=1e-9)
