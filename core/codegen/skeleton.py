"""What every C-style kernel skeleton shares: the GPU kernels (codegen/gpu.py) and the C
backend's inner loops (backends/cpu_c/dialect.py) name operands and parameters alike, declare
them through the Dialect, load, store and loop over work-items the same way. A kernel function
is rendered with its parameter list (`KernelSource`), so no runtime reads it back from the text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from theanine.codegen.cstyle import CStyleRenderer, Dialect
from theanine.codegen.ir import Kernel


@dataclass(frozen=True)
class KernelArg:
    """One parameter of a kernel function: a scalar of `dtype` (a NumPy dtype name), or with
    `pointer` the address of `dtype` elements in global memory, only read when `const`."""

    name: str
    dtype: str
    pointer: bool = False
    const: bool = True


@dataclass(frozen=True)
class KernelSource:
    """A rendered kernel function: its text and its parameters in order, what a runtime needs
    to load and launch it."""

    text: str
    args: tuple[KernelArg, ...]


def int64_arg(name: str) -> KernelArg:
    """A size, stride or offset parameter (in elements)."""
    return KernelArg(name, "int64")


class SkeletonRenderer:
    """Names, declarations, loads, stores and loops of a C-style kernel through a Dialect:
    outputs are O<j>, inputs I<b>, scalar parameters P<j>, the element index i."""

    def __init__(self, dialect: Dialect):
        self.d = dialect
        self.r = CStyleRenderer(dialect)

    def declare(self, a: KernelArg) -> str:
        """The C declaration of `a` (a parameter, or a local variable of the same type)."""
        d = self.d
        const = "const " if a.const else ""
        if a.pointer:
            return f"{d.global_ptr}{const}{d.type(a.dtype)} *{d.restrict} {a.name}"
        return f"{const}{d.type(a.dtype)} {a.name}"

    @staticmethod
    def outputs(dtypes: Sequence[str]) -> list[KernelArg]:
        """Pointers O<j> to outputs of `dtypes`."""
        return [KernelArg(f"O{j}", dt, pointer=True, const=False) for j, dt in enumerate(dtypes)]

    @staticmethod
    def inputs(k: Kernel) -> list[KernelArg]:
        """Pointers I<b> to `k`'s input buffers (read only)."""
        return [KernelArg(f"I{b}", dt, pointer=True) for b, (dt, _) in enumerate(k.inputs)]

    @staticmethod
    def params(k: Kernel) -> list[KernelArg]:
        """`k`'s scalar parameters P<j>."""
        return [KernelArg(f"P{j}", dt) for j, dt in enumerate(k.params)]

    def body(self, k: Kernel, load: Callable[[int, str], str]) -> tuple[list[str], list[str]]:
        """Statements computing `k`'s outputs at the current element, and their value names;
        load(buffer, dtype) is the C text reading input `buffer` there."""
        return self.r.body(k, load, lambda j: f"P{j}")

    @staticmethod
    def stores(values: Sequence[str], at: Callable[[int], str]) -> list[str]:
        """Statements writing output value j to `at(j)`."""
        return [f"{at(j)} = {v};" for j, v in enumerate(values)]

    def loop(self, bound: str = "n", var: str = "i") -> str:
        """The loop header giving this work-item its share of `bound` elements: from its
        global id in steps of the global size (all of them in a C function)."""
        d = self.d
        return (f"for (int64_t {var} = {d.work_item('global_id')}; {var} < {bound}; "
                f"{var} += {d.work_item('global_size')})")

    def function(self, name: str, args: Sequence[KernelArg], lines: list[str]) -> KernelSource:
        """The kernel function `name(args)` whose body is `lines`."""
        params = ", ".join(self.declare(a) for a in args)
        text = "\n".join([f"{self.d.kernel_qualifier} {name}({params})", "{", *lines, "}"])
        return KernelSource(text, tuple(args))
