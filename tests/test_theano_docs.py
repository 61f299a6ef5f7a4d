"""Theano's own tutorial and library pages, run as doctests with `import theano` resolving to
theanine (tests/theano_docs.py). The docs are not part of this repository: point
THEANINE_THEANO_DIR at a Theano checkout (its doc/ folder is read); without it the test is
skipped.

Each page must keep at least the number of examples that run and print as Theano's docs show
(`PASSING`, measured when it was last raised); the remaining differences of each page are
listed beside it. Raise a count when a change makes more examples pass."""

import os

import pytest
from theano_docs import run_page

THEANO = os.environ.get("THEANINE_THEANO_DIR")

# page: (examples that pass, examples in the page) -- what the rest are
PASSING = {
    "tutorial/adding.txt": (33, 35),  # type(x) names theanine's class; `theano` unbound
    "tutorial/aliasing.txt": (6, 6),
    "tutorial/broadcasting.txt": (17, 17),
    "tutorial/conditions.txt": (1, 1),
    "tutorial/debug_faq.txt": (1, 8),  # examples that show errors; Elemwise{...} node names
    "tutorial/examples.txt": (97, 101),  # random draws: Philox, not Theano's MRG numbers
    "tutorial/gradients.txt": (52, 59),  # pp of unrewritten gradients; names unbound
    "tutorial/index.txt": (2, 2),
    "tutorial/loading_and_saving.txt": (12, 17),  # `six` is not installed
    "tutorial/loop.txt": (10, 11),  # random draws
    "tutorial/modes.txt": (1, 2),  # looks for Gemv/Gemm class names
    "tutorial/numpy.txt": (6, 6),
    "tutorial/printing_drawing.txt": (21, 24),  # debugprint/pprint with Elemwise{...} names
    "tutorial/shape_info.txt": (17, 22),  # debugprint names; a Join shape check at run time
    "tutorial/sparse.txt": (20, 20),
    "tutorial/using_gpu.txt": (2, 5),  # the gpuarray back-end
    "library/printing.txt": (11, 16),  # pp and debugprint of unrewritten gradients
    "library/scan.txt": (11, 13),  # scan's printed node names; strict=True with a stream
    "library/tensor/basic.txt": (78, 82),
    "library/tensor/nnet/nnet.txt": (6, 6),
    "library/compile/function.txt": (4, 4),
    "library/compile/io.txt": (53, 55),  # two of Theano's error texts
    "library/compile/nanguardmode.txt": (1, 2),  # the example expects its traceback
    "library/sparse/index.txt": (26, 26),
}


@pytest.mark.skipif(not THEANO, reason="THEANINE_THEANO_DIR (a Theano checkout) is not set")
@pytest.mark.parametrize("page", sorted(PASSING))
def test_theano_doc_page(page):
    passed, total = PASSING[page]
    result = run_page(os.path.join(THEANO, "doc", page))
    assert result.total == total, f"{page}: {result.total} examples, the table says {total}"
    assert result.passed >= passed, (f"{page}: {result.passed} of {total} examples ran as "
                                     f"the docs show, fewer than {passed}:\n"
                                     + "\n".join(result.failures)[:6000])
