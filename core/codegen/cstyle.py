"""One renderer for C-like languages: it prints kernel IR expressions as C expressions and the
body of an inner loop; a Dialect supplies what differs between C, CUDA and OpenCL (type names,
math function names, qualifiers, the loop skeleton around the body).

Each scalar op's C meaning mirrors its NumPy reference, including the awkward parts: Python
floor division and modulo, NaN-propagating maximum/minimum, sign(NaN) = NaN, round half to even.
"""

from __future__ import annotations

from collections.abc import Callable

from theanine.codegen import random_kernels
from theanine.codegen.ir import Call, Const, Expr, Index, Kernel, Load, Param, topo_exprs
from theanine.codegen.scalar_kernels import ExprContext, kernel_key, plugin_kernels
from theanine.tensor.elemwise import ScalarOp

C_TYPES = {"bool": "npy_bool", "int8": "int8_t", "int16": "int16_t", "int32": "int32_t",
           "int64": "int64_t", "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t",
           "uint64": "uint64_t", "float32": "float", "float64": "double"}

# Helpers with NumPy semantics, emitted once per source (T = float type, SFX = the suffix of its
# math functions: f for float in C and CUDA, none in OpenCL where builtins are overloaded).
PRELUDE = r"""
#define TH_DEF_FLOAT_HELPERS(T, SFX) \
TH_FN T th_divmod_##T(T a, T b, T *modp) { \
    T mod = fmod##SFX(a, b); \
    if (b == 0) { *modp = mod; return a / b; } \
    T div = (a - mod) / b; \
    if (mod != 0) { if ((b < 0) != (mod < 0)) { mod += b; div -= 1; } } \
    else { mod = copysign##SFX((T)0, b); } \
    T fl; \
    if (div != 0) { fl = floor##SFX(div); if (div - fl > (T)0.5) fl += 1; } \
    else { fl = copysign##SFX((T)0, a / b); } \
    *modp = mod; return fl; } \
TH_FN T th_floordiv_##T(T a, T b) { T m; return th_divmod_##T(a, b, &m); } \
TH_FN T th_mod_##T(T a, T b) { T m; th_divmod_##T(a, b, &m); return m; } \
TH_FN T th_max_##T(T a, T b) { return (a >= b || a != a) ? a : b; } \
TH_FN T th_min_##T(T a, T b) { return (a <= b || a != a) ? a : b; } \
TH_FN T th_sign_##T(T a) { return a != a ? a : (T)((a > 0) - (a < 0)); } \
TH_FN T th_sigmoid_##T(T a) { return (T)1 / ((T)1 + exp##SFX(-a)); } \
TH_FN T th_softplus_##T(T a) { \
    return a > 0 ? a + log1p##SFX(exp##SFX(-a)) : log1p##SFX(exp##SFX(a)); }

#define TH_DEF_INT_HELPERS(T) \
TH_FN T th_floordiv_##T(T a, T b) { \
    if (b == 0) return 0; \
    T q = a / b; if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1; return q; } \
TH_FN T th_mod_##T(T a, T b) { \
    if (b == 0) return 0; \
    T r = a % b; if (r != 0 && ((r < 0) != (b < 0))) r += b; return r; } \
TH_FN T th_max_##T(T a, T b) { return a >= b ? a : b; } \
TH_FN T th_min_##T(T a, T b) { return a <= b ? a : b; }
"""

INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool")

_MATH_1 = {"exp": "exp", "exp2": "exp2", "expm1": "expm1", "log": "log", "log2": "log2",
           "log10": "log10", "log1p": "log1p", "sin": "sin", "cos": "cos", "tan": "tan",
           "arcsin": "asin", "arccos": "acos", "arctan": "atan", "sinh": "sinh", "cosh": "cosh",
           "tanh": "tanh", "sqrt": "sqrt", "floor": "floor", "ceil": "ceil", "trunc": "trunc",
           "round": "nearbyint"}
_INFIX = {"add": "+", "sub": "-", "mul": "*", "true_div": "/"}
_COMPARE = {"lt": "<", "gt": ">", "le": "<=", "ge": ">=", "eq": "==", "neq": "!="}
_BITWISE = {"and_": "&", "or_": "|", "xor": "^"}
_LOGICAL = {"logical_and": "&&", "logical_or": "||"}

# Scalar ops a C-style kernel can compute (the table _RULES below, plus plugins' kernels from
# theanine.codegen.scalar_kernels), and dtypes it cannot (they run as library calls).
UNSUPPORTED_DTYPES = {"float16", "complex64", "complex128"}


def _is_float(dtype: str) -> bool:
    return dtype.startswith("float")


def _promote(*dtypes: str) -> str:
    import numpy as np

    return np.result_type(*dtypes).name


class Dialect:
    """What differs between C-like languages. Subclasses override data, not logic."""

    name = "c"
    restrict = "restrict"
    type_names = C_TYPES
    fn_qualifier = "static inline"  # helper functions
    math_suffix = {"float32": "f", "float64": ""}
    math_names: dict[str, str] = {}  # renamed builtins (OpenCL's rint for nearbyint)
    float_dtypes: tuple[str, ...] = ("float32", "float64")
    header = ""  # type definitions and pragmas the prelude needs
    kernel_qualifier = "static void"  # what a kernel function's definition starts with
    global_ptr = ""  # the address space of a kernel's array arguments
    # Work-item index expressions: the first element a work-item takes and its step
    # (global_id, global_size), its place in its group and its group's in the grid (local_id,
    # group_id, num_groups); {axis} is the dimension 0, 1 or 2, {xyz} its letter. A C kernel
    # function is the one work-item of its run: it starts at 0 and takes every element.
    work_items: dict[str, str] = {"global_id": "0", "global_size": "1"}

    def prelude(self, body: str | None = None, random: bool | None = None) -> str:
        """The helper functions a kernel source starts with: those `body` calls (all of them
        when body is None), since every unused one still costs device compilers time; the
        random draws' helpers when `random` (default: when body is None or calls them)."""
        def used(dtype: str) -> bool:
            return body is None or f"_{self.type(dtype)}(" in body

        lines = [self.header, f"#define TH_FN {self.fn_qualifier}", PRELUDE]
        lines += [f"TH_DEF_FLOAT_HELPERS({self.type(d)}, {self.math_suffix[d]})"
                  for d in self.float_dtypes if used(d)]
        lines += [f"TH_DEF_INT_HELPERS({self.type(d)})" for d in INT_DTYPES if used(d)]
        if random is None:
            random = body is None or "th_random_" in body or "th_philox" in body
        if random:
            lines.append(random_kernels.prelude(self, self.float_dtypes))
            if "float64" in self.float_dtypes:
                lines.append(random_kernels.binomial_prelude(self))
        return "\n".join(lines)

    def type(self, dtype: str) -> str:
        return self.type_names[dtype]

    def math(self, fn: str, dtype: str) -> str:
        """The name of a C math function for `dtype` (C uses expf for float, exp for double)."""
        return self.math_names.get(fn, fn) + self.math_suffix.get(dtype, "")

    def helper(self, name: str, dtype: str) -> str:
        """The name of a PRELUDE helper for `dtype`."""
        return f"th_{name}_{self.type(dtype)}"

    def work_item(self, what: str, axis: int = 0) -> str:
        """The int64 C text of work-item index `what` along `axis` (see `work_items`)."""
        text = self.work_items.get(what)
        if text is None:
            raise ValueError(f"{self.name} kernels have no work-item index {what!r} (they have "
                             f"{', '.join(sorted(self.work_items))})")
        return text.format(axis=axis, xyz="xyz"[axis])


REDUCE_IDENTITY_FLOAT = {"add": "0", "mul": "1", "max": "-INFINITY", "min": "INFINITY",
                         "and": "1", "or": "0"}


def reduce_identity(op: str, dtype: str, d: Dialect) -> str:
    """C text of the neutral element of reduction `op` in `dtype`."""
    if op in ("max", "min") and not _is_float(dtype):
        import numpy as np

        if dtype == "bool":
            return "0" if op == "max" else "1"
        info = np.iinfo(dtype)
        if op == "max":
            # the most negative int64 has no literal: write it as an expression
            return f"(({d.type(dtype)})({info.min + 1}L - 1))" if info.min else "0"
        return f"(({d.type(dtype)}){info.max}UL)"
    return REDUCE_IDENTITY_FLOAT[op]


def accumulator_dtype(op: str, dtype: str, d: Dialect) -> str:
    """The dtype reduction `op` over `dtype` accumulates in: a float32 sum in double where the
    dialect has it (NumPy sums float32 pairwise; a long or strided sum added up in float32
    loses digits NumPy keeps), else `dtype` itself."""
    wide = op == "add" and dtype == "float32" and "float64" in d.float_dtypes
    return "float64" if wide else dtype


def combine(op: str, acc: str, value: str, dtype: str, d: Dialect) -> str:
    """C text merging `value` into accumulator `acc`."""
    if op == "add":
        return f"{acc} + {value}"
    if op == "mul":
        return f"{acc} * {value}"
    if op in ("max", "min"):
        return f"{d.helper(op, dtype)}({acc}, {value})"
    if op == "and":
        return f"({acc} && {value})"
    return f"({acc} || {value})"


class CStyleRenderer:
    """Prints kernel IR as C-like statements through a Dialect."""

    def __init__(self, dialect: Dialect):
        self.d = dialect

    # -- what can be rendered ------------------------------------------------------------------
    def supports(self, op: str | ScalarOp, in_dtypes: list[str], out_dtype: str) -> bool:
        """True if scalar op `op` (a ScalarOp, or its kernel's name in the IR) on these dtypes
        can be rendered. A ScalarOp is judged by identity, not name (see `kernel_key`)."""
        if not isinstance(op, str):
            key = kernel_key(op)
            return key is not None and self.supports(key, in_dtypes, out_dtype)
        if any(d in UNSUPPORTED_DTYPES for d in [*in_dtypes, out_dtype]):
            return False
        if op == "pow" and not _is_float(out_dtype):
            return False  # NumPy raises on negative integer exponents; keep its error
        if op == "cast":
            return True
        if op == "random_binomial" and "float64" not in self.d.float_dtypes:
            return False  # it inverts the distribution in double precision
        if op in _RULES:
            return True
        kernel = plugin_kernels().get(op)
        return kernel is not None and out_dtype in kernel.dtypes

    # -- expressions ---------------------------------------------------------------------------
    def expr(self, e: Call, args: list[str]) -> str:
        """C text of a Call given its arguments' C text."""
        if e.op == "cast":
            return self.cast(args[0], e.args[0].dtype, e.dtype)
        rule = _RULES.get(e.op)
        if rule is not None:
            return rule(self, e, args)
        ctx = ExprContext(self, e.dtype, [a.dtype for a in e.args])
        return f"({plugin_kernels()[e.op].render(ctx, *_in(self, e, args))})"

    def cast(self, text: str, src: str, dst: str) -> str:
        if src == dst:
            return text
        if dst == "bool":
            return f"({text} != 0)"
        if src == "bool":  # through int: gcc vectorizes no loop converting bytes to floats
            return f"(({self.d.type(dst)})(int)({text}))"
        return f"(({self.d.type(dst)})({text}))"

    def body(self, kernel: Kernel, load: Callable[[int, str], str],
             param: Callable[[int], str], index: Callable[[int], str] | None = None,
             overrides: dict[Expr, str] | None = None) -> tuple[list[str], list[str]]:
        """SSA statements computing every output of `kernel`, and the output value names.

        load(buffer, dtype), param(index) and index(buffer) give the C text reading an input
        buffer element, a scalar parameter and a flat-index operand at the current index;
        `overrides` gives the text of expressions a skeleton computes its own way.
        """
        roots = list(kernel.outputs)
        names: dict[Expr, str] = {}
        lines = []
        for k, e in enumerate(topo_exprs(roots)):
            if overrides and e in overrides:
                text = overrides[e]
            elif isinstance(e, Index):
                if index is None:
                    raise NotImplementedError("this kernel skeleton has no flat-index operands")
                text = index(e.buf)
            elif isinstance(e, Load):
                text = load(e.buf, e.dtype)
            elif isinstance(e, Param):
                text = param(e.index)
            elif isinstance(e, Const):
                text = self.literal(e.value, e.dtype)
            else:
                text = self.expr(e, [names[a] for a in e.args])
            names[e] = f"t{k}"
            lines.append(f"const {self.d.type(e.dtype)} t{k} = {text};")
        return lines, [names[e] for e in kernel.outputs]

    def literal(self, value, dtype: str) -> str:
        if _is_float(dtype):
            if value in ("inf", "-inf"):
                return ("-" if value == "-inf" else "") + "INFINITY"
            return repr(float(value)) + ("f" if dtype == "float32" else "")
        if dtype == "bool":
            return "1" if value else "0"
        return f"(({self.d.type(dtype)}){int(value)})"


def _in(r: CStyleRenderer, e: Call, args: list[str], dtype: str | None = None) -> list[str]:
    """Arguments cast to `dtype` (default: the output dtype)."""
    dtype = dtype or e.dtype
    return [r.cast(a, x.dtype, dtype) for a, x in zip(args, e.args)]


def _infix(sym):
    def rule(r, e, args):
        a, b = _in(r, e, args)
        return f"({a} {sym} {b})"
    return rule


def _compare(sym):
    def rule(r, e, args):
        a, b = _in(r, e, args, _promote(*[x.dtype for x in e.args]))
        return f"({a} {sym} {b})"
    return rule


def _math1(fn):
    def rule(r, e, args):
        (a,) = _in(r, e, args)
        if not _is_float(e.dtype):
            return a  # floor/ceil/round/trunc of an integer is the integer
        return f"{r.d.math(fn, e.dtype)}({a})"
    return rule


def _helper(name):
    def rule(r, e, args):
        ins = _in(r, e, args)
        return f"{r.d.helper(name, e.dtype)}({', '.join(ins)})"
    return rule


def _bitwise(sym):
    def rule(r, e, args):
        a, b = _in(r, e, args)
        if e.dtype == "bool":
            return f"(({a} {sym} {b}) != 0)"
        return f"(({r.d.type(e.dtype)})({a} {sym} {b}))"
    return rule


def _abs(r, e, args):
    (a,) = _in(r, e, args)
    if _is_float(e.dtype):
        return f"{r.d.math('fabs', e.dtype)}({a})"
    if e.dtype == "bool" or e.dtype.startswith("uint"):
        return a
    return f"(({a}) < 0 ? -({a}) : ({a}))"


def _sign(r, e, args):
    (a,) = _in(r, e, args)
    if _is_float(e.dtype):
        return f"{r.d.helper('sign', e.dtype)}({a})"
    return f"(({r.d.type(e.dtype)})(({a}) > 0) - (({a}) < 0))"


def _isnan(r, e, args):
    x = e.args[0]
    return f"({args[0]} != {args[0]})" if _is_float(x.dtype) else "0"


def _isinf(r, e, args):
    x = e.args[0]
    return f"(isinf({args[0]}) != 0)" if _is_float(x.dtype) else "0"


def _invert(r, e, args):
    (a,) = _in(r, e, args)
    return f"(!{a})" if e.dtype == "bool" else f"(({r.d.type(e.dtype)})(~{a}))"


def _neg(r, e, args):
    (a,) = _in(r, e, args)
    return f"(({r.d.type(e.dtype)})(-{a}))"


def _switch(r, e, args):
    # a non-bool condition is compared with 0: OpenCL C takes no float condition in `?:`
    c = r.cast(args[0], e.args[0].dtype, "bool")
    a, b = [r.cast(t, x.dtype, e.dtype) for t, x in zip(args[1:], e.args[1:])]
    return f"({c} ? {a} : {b})"


def _clip(r, e, args):
    x, lo, hi = _in(r, e, args)
    return f"{r.d.helper('min', e.dtype)}({r.d.helper('max', e.dtype)}({x}, {lo}), {hi})"


def _pow(r, e, args):
    a, b = _in(r, e, args)
    return f"{r.d.math('pow', e.dtype)}({a}, {b})"


def _arctan2(r, e, args):
    a, b = _in(r, e, args)
    return f"{r.d.math('atan2', e.dtype)}({a}, {b})"


def _divlike(name):
    def rule(r, e, args):
        a, b = _in(r, e, args)
        return f"{r.d.helper(name, e.dtype)}({a}, {b})"
    return rule


_RULES: dict[str, Callable] = {
    **{k: _infix(v) for k, v in _INFIX.items()},
    **{k: _compare(v) for k, v in _COMPARE.items()},
    **{k: _math1(v) for k, v in _MATH_1.items()},
    **{k: _bitwise(v) for k, v in _BITWISE.items()},
    "logical_and": lambda r, e, a: f"(({a[0]}) && ({a[1]}))",
    "logical_or": lambda r, e, a: f"(({a[0]}) || ({a[1]}))",
    "logical_xor": lambda r, e, a: f"((!({a[0]})) != (!({a[1]})))",
    "logical_not": lambda r, e, a: f"(!({a[0]}))",
    "int_div": _divlike("floordiv"),
    "mod": _divlike("mod"),
    "maximum": _helper("max"),
    "minimum": _helper("min"),
    "pow": _pow,
    "arctan2": _arctan2,
    "neg": _neg,
    "abs": _abs,
    "sign": _sign,
    "sqr": lambda r, e, a: "({0} * {0})".format(*_in(r, e, a)),
    "reciprocal": lambda r, e, a: "(({1})1 / {0})".format(*_in(r, e, a), r.d.type(e.dtype)),
    "sigmoid": _helper("sigmoid"),
    "softplus": _helper("softplus"),
    "invert": _invert,
    "isnan": _isnan,
    "isinf": _isinf,
    "switch": _switch,
    "clip": _clip,
    "second": lambda r, e, a: r.cast(a[1], e.args[1].dtype, e.dtype),
    "zeros_like": lambda r, e, a: r.literal(0, e.dtype),
    "ones_like": lambda r, e, a: r.literal(1, e.dtype),
    "identity": lambda r, e, a: a[0],
    **random_kernels.RULES,
}
