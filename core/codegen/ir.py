"""The kernel IR: an index space, a scalar expression DAG over input buffers, and optionally one
reduction. Backends never see graph Ops inside a kernel, only these nodes; one renderer turns
them into C, CUDA or OpenCL source through a dialect.

A kernel's loop space has `ndim` axes. Each input buffer is read at the current index (broadcast
axes have stride 0). An elementwise kernel writes every `outputs` expression at the same index.
A reduction kernel combines `outputs[0]` over `reduce_axes` of the loop space with `reduce_op`
and writes one value per remaining index.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, eq=False)
class Expr:
    """A scalar expression node; `dtype` is the NumPy dtype name of its value. Nodes compare by
    identity: a shared sub-expression is one object, rendered once."""

    dtype: str


@dataclass(frozen=True, eq=False)
class Load(Expr):
    """The element of input buffer `buf` at the current index."""

    buf: int


@dataclass(frozen=True, eq=False)
class Index(Expr):
    """The flat C-order index (uint64) of the current element within input `buf`, a virtual
    operand: the kernel reads no memory for it, its position in the loop is the value (a
    random draw's element index: theanine.tensor.random.FlatIndex). Its strides are those of
    a C-contiguous array of the draw's shape, 0 along broadcast axes."""

    buf: int


@dataclass(frozen=True, eq=False)
class Const(Expr):
    """A literal (only for values that never vary: neutral elements, small integers)."""

    value: float | int | bool


@dataclass(frozen=True, eq=False)
class Param(Expr):
    """A scalar kernel argument: a constant that may vary between compilations of otherwise
    identical graphs, passed at launch so the compiled kernel is reused."""

    index: int


@dataclass(frozen=True, eq=False)
class Call(Expr):
    """A scalar op applied to argument expressions; `op` is the kernel name the renderer
    knows the op by (`theanine.codegen.scalar_kernels.kernel_key`: "cast" for casts)."""

    op: str
    args: tuple[Expr, ...]


@dataclass
class Kernel:
    """One loop nest to render and launch."""

    name: str
    ndim: int
    inputs: list[tuple[str, int]]  # (dtype, ndim) per input buffer
    params: list[str]  # dtype per scalar parameter
    outputs: list[Expr]
    reduce_op: str | None = None
    reduce_axes: tuple[int, ...] = ()
    acc_dtype: str | None = None
    output_dtypes: list[str] = field(default_factory=list)
    # input buffers that are flat-index operands (`Index`): the step's input there is the
    # int64 size vector of the draw, not an array
    index_inputs: frozenset[int] = frozenset()
    # input buffers of one element broadcast over the whole loop (every static length 1):
    # read once per run, outside the loop
    scalar_inputs: frozenset[int] = frozenset()

    @property
    def is_reduction(self) -> bool:
        return self.reduce_op is not None


def topo_exprs(roots: list[Expr]) -> list[Expr]:
    """Every sub-expression of `roots`, each once, arguments before their users."""
    order: list[Expr] = []
    seen: set[Expr] = set()
    stack: list[tuple[Expr, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        e, done = stack.pop()
        if e in seen:
            continue
        if done:
            seen.add(e)
            order.append(e)
            continue
        stack.append((e, True))
        if isinstance(e, Call):
            stack.extend((a, False) for a in reversed(e.args) if a not in seen)
    return order
