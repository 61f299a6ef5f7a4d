"""theanine: symbolic tensor graphs, symbolic gradients, and compiled functions.

    import theanine as th, theanine.tensor as T
    x = T.dvector("x")
    f = th.function([x], T.sum(x ** 2))
"""

__version__ = "0.1.0"

from theanine import tensor  # noqa: E402, I001  (first: gradient builds on it)
from theanine import gradient  # noqa: E402
from theanine import scalar  # noqa: E402
from theanine.compile import (  # noqa: E402
    DebugModeError,
    Function,
    In,
    MissingInputError,
    Mode,
    Out,
    Param,
    SharedVariable,
    function,
    shared,
)
from theanine.config import config  # noqa: E402
from theanine.gradient import grad, hessian, jacobian, verify_grad  # noqa: E402
from theanine.printing import debugprint, pp, pydotprint  # noqa: E402
from theanine.tensor import dot  # noqa: E402  (Theano's theano.dot)
from theanine.updates import OrderedUpdates  # noqa: E402
# T.shared_randomstreams and theano.sandbox.rng_mrg without importing them first, as in Theano
# (here, above the graph layer, which must not import the random streams)
from theanine.tensor import shared_randomstreams  # noqa: E402, F401
from theanine import sandbox  # noqa: E402
from theanine.sandbox import rng_mrg  # noqa: E402, F401
from theanine.scan_module import clone, foldl, foldr, map, reduce, scan  # noqa: E402, A004

__all__ = ["DebugModeError", "Function", "In", "MissingInputError", "Mode", "OrderedUpdates",
           "Out", "Param", "SharedVariable", "clone", "config",
           "debugprint", "dot", "function", "grad", "gradient", "hessian", "jacobian", "pp",
           "pydotprint", "sandbox", "scalar", "scan", "map", "reduce", "foldl", "foldr", "shared",
           "tensor", "verify_grad", "__version__"]
