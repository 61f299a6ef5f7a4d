"""erf, erfc and gelu for theanine, as an op plugin (see docs/writing-an-op.md).

Once installed they are `theanine.tensor.erf`, `.erfc` and `.gelu`; the C backend (and the
OpenCL and CUDA ones) fuse them into their kernels, and `0.5 * x * (1 + erf(x / sqrt(2)))`
is rewritten to `gelu(x)`.
"""

from theanine_erf.ops import ERF, ERFC, GELU, erf, erfc, gelu

__all__ = ["ERF", "ERFC", "GELU", "erf", "erfc", "gelu"]
