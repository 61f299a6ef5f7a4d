"""pp, debugprint and pydotprint: the text a user reads to understand a graph."""

import io
import shutil

import numpy as np
import pytest

import theanine as th
import theanine.tensor as T
from theanine.compile.function import function
from theanine.graph.fgraph import FunctionGraph
from theanine.printing import debugprint, dot_source, pp, pydotprint


def test_pp_infix_calls_names_and_constants():
    foo = T.dscalar("foo")
    x, y, z = T.dvector("x"), T.dvector("y"), T.dvector("z")
    assert pp(foo ** 2) == "(foo ** 2)"
    assert pp(x * y + z) == "((x * y) + z)"
    assert pp(T.exp(T.sin(x ** 2))) == "exp(sin((x ** 2)))"
    assert pp(-x / 0.5) == "((-x) / 0.5)"
    assert pp(T.dscalar() * 3) == "(<TensorType(float64, scalar)> * 3)"
    assert pp(T.constant(np.array([1, 2])) + T.lvector("i")) == "([1, 2] + i)"
    assert pp(T.dmatrix("m").T) == "m.T"


def test_pp_parenthesizes_unary_operands():
    x = T.dvector("x")
    assert pp((-x) ** 2) == "((-x) ** 2)"
    assert pp(-(x ** 2)) == "-(x ** 2)"
    assert pp(T.neg(-x)) == "-(-x)"
    assert pp(x ** -1) == "(x ** (-1))"
    assert pp(~T.lvector("i") & 3) == "((~i) & 3)"


def test_pp_and_debugprint_handle_deep_graphs():
    x = T.dvector("x")
    h = x
    for _ in range(3000):
        h = h * 2
    text = pp(h)
    assert text.startswith("(" * 3000 + "x * 2)") and text.count("* 2") == 3000
    lines = debugprint(h, file="str").splitlines()
    assert len(lines) == 3000 * 3 + 1  # each level: mul, DimShuffle{x}, the constant 2
    assert lines[-1].strip(" |").startswith("2 [id")


def test_pp_shows_named_intermediates_by_name():
    x = T.dvector("x")
    h = T.tanh(x)
    h.name = "h"
    out = h * h
    out.name = "out"
    assert pp(out) == "(h * h)"
    assert pp(h) == "tanh(x)"


def test_debugprint_tree_ids_and_repeats():
    x, y = T.dvector("x"), T.dvector("y")
    xy = x * y
    text = debugprint(xy + T.exp(xy), file="str")
    assert text.splitlines() == [
        "add [id A]",
        " |mul [id B]",
        " | |x [id C]",
        " | |y [id D]",
        " |exp [id E]",
        " | |mul [id B]",
    ]


def test_debugprint_prints_and_shows_types_and_names(capsys):
    x = T.fvector("x")
    out = x * 2
    out.name = "doubled"
    assert debugprint([out], print_type=True) is None  # printed, not returned, as Theano
    text = capsys.readouterr().out
    assert debugprint([out], print_type=True, file="str") + "\n" == text
    assert text.splitlines() == [
        "mul [id A] 'doubled' <TensorType(float32, vector)>",
        " |x [id B] <TensorType(float32, vector)>",
        " |DimShuffle{x} [id C] <TensorType(float32, shape=(1,))>",
        " | |2 [id D] <TensorType(float32, scalar)>",
    ]


def test_debugprint_depth_and_file():
    x = T.dscalar("x")
    y = T.exp(x * 2) + 1
    assert debugprint(y, depth=1, file="str") == "add [id A]"
    assert debugprint(y, depth=2, file="str").splitlines() == [
        "add [id A]", " |exp [id B]", " |1 [id C]"]
    buffer = io.StringIO()
    assert debugprint(y, file=buffer) is buffer
    assert buffer.getvalue() == debugprint(y, file="str") + "\n"


def test_debugprint_of_a_compiled_function_shows_the_rewritten_graph():
    x = T.dvector("x")
    f = function([x], T.log(T.sigmoid(x)) * 1)
    text = debugprint(f, file="str")
    assert text.splitlines() == [
        "neg [id A] 2",
        " |softplus [id B] 1",
        " | |neg [id C] 0",
        " | | |x [id D]",
    ]
    fg = FunctionGraph([x], [x + 1])
    assert debugprint(fg, file="str").splitlines()[0] == "add [id A] 1"


def test_debugprint_shows_a_scans_inner_graph_after_the_outer_tree():
    import theanine

    k, a = T.iscalar("k"), T.dvector("A")
    result, _ = theanine.scan(lambda prior, a: prior * a, outputs_info=T.ones_like(a),
                              non_sequences=a, n_steps=k, name="power")
    lines = debugprint(result[-1], file="str").splitlines()
    scan_line = next(line for line in lines if "Scan{power}" in line)
    tail = lines[lines.index("Inner graphs:"):]
    assert tail[2] == scan_line.lstrip(" |")
    assert tail[3].startswith(" >mul [id ") and tail[4].startswith(" > |output0[t-1] [id ")
    assert tail[5].startswith(" > |A [id ")


def test_debugprint_rejects_other_objects():
    with pytest.raises(TypeError, match="expected a Variable, a list of Variables"):
        debugprint(42)


def test_dot_source_and_pydotprint(tmp_path):
    x, y = T.dvector("x"), T.dvector("y")
    out = T.exp(x) * y
    out.name = "out"
    text = dot_source(out)
    assert text.startswith("digraph theanine {") and text.rstrip().endswith("}")
    assert 'n0 [label="exp", shape=box];' in text
    assert 'n1 [label="mul", shape=box];' in text
    assert 'v0 [label="x\\nTensorType(float64, vector)"' in text
    assert "n0 -> n1 [label=\"0\"];" in text
    assert 'out0 [label="out\\nTensorType(float64, vector)"' in text
    path = pydotprint(out, tmp_path / "g.dot")
    assert path.read_text() == text


@pytest.mark.skipif(shutil.which("dot") is not None, reason="Graphviz is installed")
def test_pydotprint_png_without_graphviz_explains(tmp_path):
    x = T.dvector("x")
    with pytest.raises(RuntimeError, match="Install Graphviz"):
        pydotprint(x * 2, tmp_path / "g.png")
    assert (tmp_path / "g.dot").exists()


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_print_op_prints_and_passes_values_and_gradients(capsys, backend):
    """theano.printing.Print is the identity that prints, in Theano's format
    ('<message> <attr> = <value>'), each time it is computed; its gradient passes through."""
    x = T.dvector("x")
    y = th.printing.Print("y is")(x * 2)
    z = th.printing.Print("z", attrs=("shape", "sum"))(y + 1)
    f = th.function([x], [z, T.grad(T.sum(z * x), x)], backend=backend)
    capsys.readouterr()
    out, g = f(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(out, [3.0, 5.0])
    np.testing.assert_array_equal(g, [2 * 1 + 3, 2 * 2 + 5])  # d(sum((2x+1)x))/dx = 4x+1
    printed = capsys.readouterr().out.splitlines()
    assert printed[:3] == ["y is __str__ = [2. 4.]", "z shape = (2,)", "z sum = 8.0"]
