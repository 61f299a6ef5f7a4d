"""The examples of Theano's docs that loop: the "Loop" tutorial (doc/tutorial/loop.txt, with
its exercise's solution), the scan library page (doc/library/scan.txt) and the manual Jacobian
and Hessian of "Derivatives" (doc/tutorial/gradients.txt), ported by their imports only
(`import theanine as theano`, `theanine.tensor as T`). Each asserts the numbers the docs print
(copied from the doc text) or, where the docs print none, an independent NumPy computation;
each runs on the reference backend, on C and on OpenCL where a device is found
(`theano.config.device`)."""

import numpy as np
import pytest

import theanine as theano
import theanine.tensor as T
from theanine.backend import backends


@pytest.fixture(params=["numpy", "c", pytest.param("opencl", marks=pytest.mark.skipif(
    not backends()["opencl"].available()[0], reason="no OpenCL device"))], autouse=True)
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


# --- doc/library/scan.txt ---------------------------------------------------------------------

def test_library_power():
    k = T.iscalar("k")
    A = T.vector("A")
    result, updates = theano.scan(fn=lambda prior_result, A: prior_result * A,
                                  outputs_info=T.ones_like(A), non_sequences=A, n_steps=k)
    final_result = result[-1]
    power = theano.function(inputs=[A, k], outputs=final_result, updates=updates)
    same(power(range(10), 2), [0., 1., 4., 9., 16., 25., 36., 49., 64., 81.])
    same(power(range(10), 4), [0.00000000e+00, 1.00000000e+00, 1.60000000e+01, 8.10000000e+01,
                               2.56000000e+02, 6.25000000e+02, 1.29600000e+03, 2.40100000e+03,
                               4.09600000e+03, 6.56100000e+03])


def test_library_polynomial():
    coefficients = theano.tensor.vector("coefficients")
    x = T.scalar("x")
    max_coefficients_supported = 10000
    components, updates = theano.scan(
        fn=lambda coefficient, power, free_variable: coefficient * (free_variable ** power),
        outputs_info=None,
        sequences=[coefficients, theano.tensor.arange(max_coefficients_supported)],
        non_sequences=x)
    polynomial = components.sum()
    calculate_polynomial = theano.function(inputs=[coefficients, x], outputs=polynomial)
    test_coefficients = np.asarray([1, 0, 2], dtype=np.float32)
    same(calculate_polynomial(test_coefficients, 3), 19.0)


def test_library_accumulation_into_a_scalar():
    up_to = T.iscalar("up_to")

    def accumulate_by_adding(arange_val, sum_to_date):
        return sum_to_date + arange_val
    seq = T.arange(up_to)
    outputs_info = T.as_tensor_variable(np.asarray(0, seq.dtype))
    scan_result, scan_updates = theano.scan(fn=accumulate_by_adding, outputs_info=outputs_info,
                                            sequences=seq)
    triangular_sequence = theano.function(inputs=[up_to], outputs=scan_result)
    got = triangular_sequence(15)
    assert got.dtype.kind == "i"
    assert got.tolist() == [0, 1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 66, 78, 91, 105]


def test_library_set_value_at_position():
    location = T.imatrix("location")
    values = T.vector("values")
    output_model = T.matrix("output_model")

    def set_value_at_position(a_location, a_value, output_model):
        zeros = T.zeros_like(output_model)
        zeros_subtensor = zeros[a_location[0], a_location[1]]
        return T.set_subtensor(zeros_subtensor, a_value)

    result, updates = theano.scan(fn=set_value_at_position, outputs_info=None,
                                  sequences=[location, values], non_sequences=output_model)
    assign_values_at_positions = theano.function(inputs=[location, values, output_model],
                                                 outputs=result)
    test_locations = np.asarray([[1, 1], [2, 3]], dtype=np.int32)
    test_values = np.asarray([42, 50], dtype=np.float32)
    test_output_model = np.zeros((5, 5), dtype=np.float32)
    shown = np.zeros((2, 5, 5))
    shown[0, 1, 1], shown[1, 2, 3] = 42, 50
    same(assign_values_at_positions(test_locations, test_values, test_output_model), shown)


W_VALUES = np.random.RandomState(0).random_sample((2, 2))
BVIS_VALUES = np.random.RandomState(1).random_sample((2,))
BHID_VALUES = np.random.RandomState(2).random_sample((2,))


def check_gibbs10(gibbs10) -> None:
    """Ten Gibbs steps give a binary visible vector, and the updates advance the streams."""
    draws = [gibbs10(np.asarray([1.0, 0.0], dtype=theano.config.floatX)) for _ in range(12)]
    for d in draws:
        assert d.shape == (2,) and set(np.unique(d)) <= {0.0, 1.0}, d
    assert len({tuple(d) for d in draws}) > 1, draws


def test_library_gibbs_sampling_with_free_shared_variables():
    W = theano.shared(W_VALUES)
    bvis = theano.shared(BVIS_VALUES)
    bhid = theano.shared(BHID_VALUES)
    trng = T.shared_randomstreams.RandomStreams(1234)

    def OneStep(vsample):
        hmean = T.nnet.sigmoid(theano.dot(vsample, W) + bhid)
        hsample = trng.binomial(size=hmean.shape, n=1, p=hmean)
        vmean = T.nnet.sigmoid(theano.dot(hsample, W.T) + bvis)
        return trng.binomial(size=vsample.shape, n=1, p=vmean, dtype=theano.config.floatX)

    sample = theano.tensor.vector()
    values, updates = theano.scan(OneStep, outputs_info=sample, n_steps=10)
    gibbs10 = theano.function([sample], values[-1], updates=updates)
    check_gibbs10(gibbs10)


def test_library_gibbs_sampling_with_shared_variables_as_non_sequences():
    W = theano.shared(W_VALUES)
    bvis = theano.shared(BVIS_VALUES)
    bhid = theano.shared(BHID_VALUES)
    trng = T.shared_randomstreams.RandomStreams(1234)

    def OneStep(vsample, W, bvis, bhid):
        hmean = T.nnet.sigmoid(theano.dot(vsample, W) + bhid)
        hsample = trng.binomial(size=hmean.shape, n=1, p=hmean)
        vmean = T.nnet.sigmoid(theano.dot(hsample, W.T) + bvis)
        return trng.binomial(size=vsample.shape, n=1, p=vmean, dtype=theano.config.floatX)

    sample = theano.tensor.vector()
    values, updates = theano.scan(fn=OneStep, outputs_info=sample,
                                  non_sequences=[W, bvis, bhid], n_steps=10)
    gibbs10 = theano.function([sample], values[-1], updates=updates)
    check_gibbs10(gibbs10)


def test_library_updates_of_a_shared_variable():
    """The docs' prose: b is 2, c is 12 and a 11 after one call; 12, 22 and 21 after two."""
    a = theano.shared(1)
    values, updates = theano.scan(lambda: {a: a + 1}, n_steps=10)
    b = a + 1
    c = updates[a] + 1
    f = theano.function([], [b, c], updates=updates)
    assert "add" in str(b) and "add" in str(c)  # the docs print Elemwise{add,no_inplace}.0
    assert a.get_value() == 1
    assert [int(v) for v in f()] == [2, 12] and a.get_value() == 11
    assert [int(v) for v in f()] == [12, 22] and a.get_value() == 21
    g = theano.function([], [b, c])
    assert [int(v) for v in g()] == [22, 32] and a.get_value() == 21


def test_library_strict_refuses_free_shared_variables():
    W = theano.shared(W_VALUES)
    bvis = theano.shared(BVIS_VALUES)
    bhid = theano.shared(BHID_VALUES)
    trng = T.shared_randomstreams.RandomStreams(1234)
    sample = theano.tensor.vector()

    def OneStep(vsample):
        hmean = T.nnet.sigmoid(theano.dot(vsample, W) + bhid)
        hsample = trng.binomial(size=hmean.shape, n=1, p=hmean)
        vmean = T.nnet.sigmoid(theano.dot(hsample, W.T) + bvis)
        return trng.binomial(size=vsample.shape, n=1, p=vmean, dtype=theano.config.floatX)

    with pytest.raises(theano.compile.MissingInputError):
        theano.scan(OneStep, outputs_info=sample, n_steps=10, strict=True)

    def OneStep(vsample, W, bvis, bhid):  # noqa: F811  (the docs' corrected version)
        hmean = T.nnet.sigmoid(theano.dot(vsample, W) + bhid)
        hsample = trng.binomial(size=hmean.shape, n=1, p=hmean)
        vmean = T.nnet.sigmoid(theano.dot(hsample, W.T) + bvis)
        return trng.binomial(size=vsample.shape, n=1, p=vmean, dtype=theano.config.floatX)

    values, updates = theano.scan(OneStep, outputs_info=sample, non_sequences=[W, bvis, bhid],
                                  n_steps=10, strict=True)
    check_gibbs10(theano.function([sample], values[-1], updates=updates))


def test_library_rnn_with_several_taps():
    def oneStep(u_tm4, u_t, x_tm3, x_tm1, y_tm1, W, W_in_1, W_in_2, W_feedback, W_out):
        x_t = T.tanh(theano.dot(x_tm1, W) +
                     theano.dot(u_t, W_in_1) +
                     theano.dot(u_tm4, W_in_2) +
                     theano.dot(y_tm1, W_feedback))
        y_t = theano.dot(x_tm3, W_out)
        return [x_t, y_t]

    W = T.matrix()
    W_in_1 = T.matrix()
    W_in_2 = T.matrix()
    W_feedback = T.matrix()
    W_out = T.matrix()
    u = T.matrix()
    x0 = T.matrix()
    y0 = T.vector()
    ([x_vals, y_vals], updates) = theano.scan(
        fn=oneStep, sequences=dict(input=u, taps=[-4, -0]),
        outputs_info=[dict(initial=x0, taps=[-3, -1]), y0],
        non_sequences=[W, W_in_1, W_in_2, W_feedback, W_out], strict=True)
    f = theano.function([u, x0, y0, W, W_in_1, W_in_2, W_feedback, W_out], [x_vals, y_vals])

    rng = np.random.RandomState(3)
    n_in, n_x, n_y = 2, 3, 2
    uv = rng.normal(size=(9, n_in))  # the docs' u = [0..8]: scan starts from u[4]
    x0v, y0v = rng.normal(size=(3, n_x)), rng.normal(size=n_y)
    ws = [rng.normal(size=s) * 0.5 for s in
          [(n_x, n_x), (n_in, n_x), (n_in, n_x), (n_y, n_x), (n_x, n_y)]]
    xs, ys = list(x0v), [y0v]
    for t in range(4, 9):
        xs.append(np.tanh(xs[-1] @ ws[0] + uv[t] @ ws[1] + uv[t - 4] @ ws[2] + ys[-1] @ ws[3]))
        ys.append(xs[-4] @ ws[4])
    got_x, got_y = f(uv, x0v, y0v, *ws)
    np.testing.assert_allclose(got_x, np.array(xs[3:]), rtol=1e-10)
    np.testing.assert_allclose(got_y, np.array(ys[1:]), rtol=1e-10)


def test_library_until():
    def power_of_2(previous_power, max_value):
        return previous_power * 2, theano.scan_module.until(previous_power * 2 > max_value)

    max_value = T.scalar()
    values, _ = theano.scan(power_of_2, outputs_info=T.constant(1.),
                            non_sequences=max_value, n_steps=1024)
    f = theano.function([max_value], values)
    same(f(45), [2., 4., 8., 16., 32., 64.])


def test_library_map_reduce_foldl_foldr():
    """The reference section's theano.map/reduce/foldl/foldr, against NumPy."""
    x = T.vector("x")
    squares, _ = theano.map(lambda v: v ** 2, sequences=x)
    total, _ = theano.reduce(lambda v, acc: acc + v, sequences=x, outputs_info=T.constant(0.))
    left, _ = theano.foldl(lambda v, acc: acc * 2 + v, sequences=x, outputs_info=T.constant(0.))
    right, _ = theano.foldr(lambda v, acc: acc * 2 + v, sequences=x, outputs_info=T.constant(0.))
    xv = np.array([1.0, 2.0, 3.0, 5.0])
    got = theano.function([x], [squares, total, left, right])(xv)
    same(got[0], xv ** 2)
    same(got[1], xv.sum())
    same(got[2], ((1 * 2 + 2) * 2 + 3) * 2 + 5)
    same(got[3], ((5 * 2 + 3) * 2 + 2) * 2 + 1)


# --- doc/tutorial/gradients.txt ---------------------------------------------------------------

def test_derivatives_jacobian_by_scan():
    x = T.dvector('x')
    y = x ** 2
    J, updates = theano.scan(lambda i, y, x: T.grad(y[i], x), sequences=T.arange(y.shape[0]),
                             non_sequences=[y, x])
    f = theano.function([x], J, updates=updates)
    same(f([4, 4]), [[8., 0.], [0., 8.]])
    same(theano.function([x], theano.gradient.jacobian(y, x))([4, 4]), [[8., 0.], [0., 8.]])


def test_derivatives_hessian_by_scan():
    x = T.dvector('x')
    y = x ** 2
    cost = y.sum()
    gy = T.grad(cost, x)
    H, updates = theano.scan(lambda i, gy, x: T.grad(gy[i], x), sequences=T.arange(gy.shape[0]),
                             non_sequences=[gy, x])
    f = theano.function([x], H, updates=updates)
    same(f([4, 4]), [[2., 0.], [0., 2.]])
    same(theano.function([x], theano.gradient.hessian(cost, x))([4, 4]), [[2., 0.], [0., 2.]])


def test_derivatives_r_operator():
    W = T.dmatrix('W')
    V = T.dmatrix('V')
    x = T.dvector('x')
    y = T.dot(x, W)
    JV = T.Rop(y, W, V)
    f = theano.function([W, V, x], JV)
    same(f([[1, 1], [1, 1]], [[2, 2], [2, 2]], [0, 1]), [2., 2.])


def test_derivatives_l_operator():
    W = T.dmatrix('W')
    v = T.dvector('v')
    x = T.dvector('x')
    y = T.dot(x, W)
    VJ = T.Lop(y, W, v)
    f = theano.function([v, x], VJ)
    same(f([2, 2], [0, 1]), [[0., 0.], [2., 2.]])


def test_derivatives_hessian_times_a_vector_both_ways():
    x = T.dvector('x')
    v = T.dvector('v')
    y = T.sum(x ** 2)
    gy = T.grad(y, x)
    vH = T.grad(T.sum(gy * v), x)
    f = theano.function([x, v], vH)
    same(f([4, 4], [2, 2]), [4., 4.])
    Hv = T.Rop(gy, x, v)
    f = theano.function([x, v], Hv)
    same(f([4, 4], [2, 2]), [4., 4.])
