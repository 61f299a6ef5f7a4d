"""The entry point: the hook implementations theanine calls (entry-point group `theanine`)."""

from theanine.plugins import hookimpl
from theanine_erf import kernels, ops


@hookimpl
def theanine_register_ops(register):
    register("erf", ops.erf, ops=[ops.ERF])
    register("erfc", ops.erfc, ops=[ops.ERFC])
    register("gelu", ops.gelu, ops=[ops.GELU])


@hookimpl
def theanine_register_kernels(register):
    for name, render in kernels.KERNELS.items():
        register(name, render)


@hookimpl
def theanine_register_rewrites(register):
    from theanine_erf.rewrites import local_gelu

    register(local_gelu, "stabilize")


@hookimpl
def theanine_register_cases(register):
    from theanine_erf.cases import CASES

    for case in CASES:
        register(case)
