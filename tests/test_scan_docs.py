"""The examples of Theano's docs that loop: the "Loop" tutorial (doc/tutorial/loop.txt, with
its exercise's solution), the scan library page (doc/library/scan.txt) and the manual Jacobian
and Hessian of "Derivatives" (doc/tutorial/gradients.txt), ported by their imports only
(`import theanine as theano`, `theanine.tensor as T`). Each asserts the numbers the docs print
(copied from the doc text) or, where the docs print none, an independent NumPy computation;
each runs on the reference backend and on C (`theano.config.device`)."""

import numpy as np
import pytest

import theanine as theano
import theanine.tensor as T


@pytest.fixture(params=["numpy", "c"], autouse=True)
def device(request):
    """Every example runs with config.device set as a ported program would set it."""
    before = theano.config.device
    theano.config.device = request.param
    yield request.param
    theano.config.device = before


def same(got, shown) -> None:
    """`got` equals the numbers the docs print (8 significant digits)."""
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(shown),
                               rtol=1e-7, atol=1e-8)


# --- doc/tutorial/loop.txt --------------------------------------------------------------------

def test_loop_tanh_of_each_row():
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    results, updates = theano.scan(lambda v: T.tanh(T.dot(v, W) + b_sym), sequences=X)
    compute_elementwise = theano.function(inputs=[X, W, b_sym], outputs=results)
    x = np.eye(2, dtype=theano.config.floatX)
    w = np.ones((2, 2), dtype=theano.config.floatX)
    b = np.ones((2), dtype=theano.config.floatX)
    b[1] = 2
    same(compute_elementwise(x, w, b), [[0.96402758, 0.99505475], [0.96402758, 0.99505475]])
    same(np.tanh(x.dot(w) + b), [[0.96402758, 0.99505475], [0.96402758, 0.99505475]])


def test_loop_recurrence_over_a_sequence_and_a_reversed_one():
    X = T.vector("X")
    W = T.matrix("W")
    U = T.matrix("U")
    Y = T.matrix("Y")
    V = T.matrix("V")
    P = T.matrix("P")
    results, updates = theano.scan(
        lambda y, p, x_tm1: T.tanh(T.dot(x_tm1, W) + T.dot(y, U) + T.dot(p, V)),
        sequences=[Y, P[::-1]], outputs_info=[X])
    compute_seq = theano.function(inputs=[X, W, Y, U, P, V], outputs=results)
    x = np.zeros((2), dtype=theano.config.floatX)
    x[1] = 1
    w = np.ones((2, 2), dtype=theano.config.floatX)
    y = np.ones((5, 2), dtype=theano.config.floatX)
    y[0, :] = -3
    u = np.ones((2, 2), dtype=theano.config.floatX)
    p = np.ones((5, 2), dtype=theano.config.floatX)
    p[0, :] = 3
    v = np.ones((2, 2), dtype=theano.config.floatX)
    same(compute_seq(x, w, y, u, p, v),
         [[-0.99505475, -0.99505475], [0.96471973, 0.96471973], [0.99998585, 0.99998585],
          [0.99998771, 0.99998771], [1.0, 1.0]])


def test_loop_norms_of_lines():
    X = T.matrix("X")
    results, updates = theano.scan(lambda x_i: T.sqrt((x_i ** 2).sum()), sequences=[X])
    compute_norm_lines = theano.function(inputs=[X], outputs=results)
    x = np.diag(np.arange(1, 6, dtype=theano.config.floatX), 1)
    same(compute_norm_lines(x), [1., 2., 3., 4., 5., 0.])


def test_loop_norms_of_columns():
    X = T.matrix("X")
    results, updates = theano.scan(lambda x_i: T.sqrt((x_i ** 2).sum()), sequences=[X.T])
    compute_norm_cols = theano.function(inputs=[X], outputs=results)
    x = np.diag(np.arange(1, 6, dtype=theano.config.floatX), 1)
    same(compute_norm_cols(x), [0., 1., 2., 3., 4., 5.])


def test_loop_trace():
    floatX = "float32"
    X = T.matrix("X")
    results, updates = theano.scan(lambda i, j, t_f: T.cast(X[i, j] + t_f, floatX),
                                   sequences=[T.arange(X.shape[0]), T.arange(X.shape[1])],
                                   outputs_info=np.asarray(0., dtype=floatX))
    result = results[-1]
    compute_trace = theano.function(inputs=[X], outputs=result)
    x = np.eye(5, dtype=theano.config.floatX)
    x[0] = np.arange(5, dtype=theano.config.floatX)
    got = compute_trace(x)
    assert got.dtype == np.float32
    same(got, 4.0)


def test_loop_two_taps_on_a_state():
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    U = T.matrix("U")
    V = T.matrix("V")
    n_sym = T.iscalar("n_sym")
    results, updates = theano.scan(
        lambda x_tm2, x_tm1: T.dot(x_tm2, U) + T.dot(x_tm1, V) + T.tanh(T.dot(x_tm1, W) + b_sym),
        n_steps=n_sym, outputs_info=[dict(initial=X, taps=[-2, -1])])
    compute_seq2 = theano.function(inputs=[X, U, V, W, b_sym, n_sym], outputs=results)
    x = np.zeros((2, 2), dtype=theano.config.floatX)
    x[1, 1] = 1
    w = 0.5 * np.ones((2, 2), dtype=theano.config.floatX)
    u = 0.5 * (np.ones((2, 2), dtype=theano.config.floatX) - np.eye(2, dtype=theano.config.floatX))
    v = 0.5 * np.ones((2, 2), dtype=theano.config.floatX)
    b = np.ones((2), dtype=theano.config.floatX)
    same(compute_seq2(x, u, v, w, b, 10),
         [[1.40514825, 1.40514825], [2.88898899, 2.38898899], [4.34018291, 4.34018291],
          [6.53463142, 6.78463142], [9.82972243, 9.82972243], [14.22203814, 14.09703814],
          [20.07439936, 20.07439936], [28.12291843, 28.18541843], [39.1913681, 39.1913681],
          [54.28407732, 54.25282732]])


def test_loop_jacobian_by_scan():
    v = T.vector()
    A = T.matrix()
    y = T.tanh(T.dot(v, A))
    results, updates = theano.scan(lambda i: T.grad(y[i], v), sequences=[T.arange(y.shape[0])])
    compute_jac_t = theano.function([A, v], results, allow_input_downcast=True)
    x = np.eye(5, dtype=theano.config.floatX)[0]
    w = np.eye(5, 3, dtype=theano.config.floatX)
    w[2] = np.ones((3), dtype=theano.config.floatX)
    same(compute_jac_t(w, x), [[0.41997434, 0., 0.41997434, 0., 0.],
                               [0., 1., 1., 0., 0.],
                               [0., 0., 1., 0., 0.]])


def test_loop_accumulate_the_number_of_steps():
    k = theano.shared(0)
    n_sym = T.iscalar("n_sym")
    results, updates = theano.scan(lambda: {k: (k + 1)}, n_steps=n_sym)
    accumulator = theano.function([n_sym], [], updates=updates, allow_input_downcast=True)
    assert k.get_value() == 0
    accumulator(5)
    assert k.get_value() == 5


def test_loop_binomial_noise_drawn_at_each_step():
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    trng = T.shared_randomstreams.RandomStreams(1234)
    d = trng.binomial(size=W[1].shape)
    results, updates = theano.scan(lambda v: T.tanh(T.dot(v, W) + b_sym) * d, sequences=X)
    compute_with_bnoise = theano.function(inputs=[X, W, b_sym], outputs=results,
                                          updates=updates, allow_input_downcast=True)
    x = np.eye(10, 2, dtype=theano.config.floatX)
    w = np.ones((2, 2), dtype=theano.config.floatX)
    b = np.ones((2), dtype=theano.config.floatX)
    first, second = compute_with_bnoise(x, w, b), compute_with_bnoise(x, w, b)
    # the docs' draws are Theano's generator's; the structure is what carries over: each
    # entry is tanh(x.dot(w) + b) (0.964... on the first two rows, 0.761... after) or 0
    full = np.tanh(x.dot(w) + b)
    for got in (first, second):
        assert got.shape == (10, 2)
        assert np.all(np.isclose(got, full) | (got == 0)), got
    masks = first != 0
    assert len({tuple(m) for m in masks}) > 1, "the mask is drawn anew at each step"
    assert not np.array_equal(first, second), "updates advance the stream between calls"


def test_loop_power():
    k = T.iscalar("k")
    A = T.vector("A")

    def inner_fct(prior_result, B):
        return prior_result * B

    result, updates = theano.scan(fn=inner_fct, outputs_info=T.ones_like(A),
                                  non_sequences=A, n_steps=k)
    final_result = result[-1]
    power = theano.function(inputs=[A, k], outputs=final_result, updates=updates)
    same(power(range(10), 2), [0., 1., 4., 9., 16., 25., 36., 49., 64., 81.])


def test_loop_warn_flag_and_polynomial():
    theano.config.warn.subtensor_merge_bug = False
    coefficients = theano.tensor.vector("coefficients")
    x = T.scalar("x")
    max_coefficients_supported = 10000
    full_range = theano.tensor.arange(max_coefficients_supported)
    components, updates = theano.scan(fn=lambda coeff, power, free_var:
                                      coeff * (free_var ** power),
                                      outputs_info=None,
                                      sequences=[coefficients, full_range],
                                      non_sequences=x)
    polynomial = components.sum()
    calculate_polynomial = theano.function(inputs=[coefficients, x], outputs=polynomial)
    test_coeff = np.asarray([1, 0, 2], dtype=np.float32)
    same(calculate_polynomial(test_coeff, 3), 19.0)


def test_loop_exercise_solution_reduces_by_scan():
    """loop_solution_1.py: the polynomial accumulated by scan, last state kept."""
    coefficients = T.vector("coefficients")
    x = T.scalar("x")
    full_range = T.arange(10000)
    outputs_info = T.as_tensor_variable(np.asarray(0, "float64"))
    components, updates = theano.scan(fn=lambda coeff, power, prior_value, free_var:
                                      prior_value + (coeff * (free_var ** power)),
                                      sequences=[coefficients, full_range],
                                      outputs_info=outputs_info, non_sequences=x)
    polynomial = components[-1]
    calculate_polynomial = theano.function(inputs=[coefficients, x], outputs=polynomial,
                                           updates=updates)
    same(calculate_polynomial(np.asarray([1, 0, 2], dtype=np.float32), 3), 19.0)
