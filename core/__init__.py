"""theanine: symbolic tensor graphs, symbolic gradients, and compiled functions."""

__version__ = "0.1.0"

from theanine.config import config  # noqa: E402
from theanine import tensor  # noqa: E402
