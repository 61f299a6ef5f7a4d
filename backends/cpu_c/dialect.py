"""The C dialect: kernels are inner-loop functions over a run of elements (NumPy's ufunc
model), called by runtime.h once per run; a contiguous version of each loop is vectorized. The
skeleton's pieces (names, declarations, loads, stores, the loop) are the GPU kernels' own
(theanine.codegen.skeleton); a C function is the one work-item of its run."""

from __future__ import annotations

from theanine.codegen.cstyle import Dialect, accumulator_dtype, combine
from theanine.codegen.ir import Kernel
from theanine.codegen.skeleton import SkeletonRenderer


class CDialect(Dialect):
    """Plain C99 with OpenMP."""

    name = "c"


class CKernelRenderer(SkeletonRenderer):
    """Renders kernel IR as C inner-loop functions for runtime.h.

    Each function has a contiguous version (typed `restrict` pointers hoisted out of the loop,
    so gcc vectorizes with plain loads and stores) and a strided version.
    """

    def __init__(self):
        super().__init__(CDialect())

    @property
    def dialect(self) -> Dialect:
        """The C dialect (its prelude and type names start a program's source)."""
        return self.d

    def _head(self, k: Kernel) -> list[str]:
        t = self.d.type
        lines = [f"{self.d.kernel_qualifier} {k.name}(int64_t n, char **p, const int64_t *s, "
                 f"const void *params)", "{",
                 "    const char *const *prm = (const char *const *)params;", "    (void)prm;"]
        lines += [f"    {self.declare(a)} = *(const {t(a.dtype)} *)prm[{j}];"
                  for j, a in enumerate(self.params(k))]
        return lines

    def _pointers(self, k: Kernel, n_out: int, out_dtypes: list[str]) -> list[str]:
        """Typed restrict pointers O<j> (outputs) and I<b> (inputs) for the contiguous loop."""
        slots = [*enumerate(self.outputs(out_dtypes)),
                 *((n_out + b, a) for b, a in enumerate(self.inputs(k)))]
        return [f"        {self.declare(a)} = ({'const ' if a.const else ''}"
                f"{self.d.type(a.dtype)} *)p[{slot}];" for slot, a in slots]

    def _body(self, k: Kernel, n_out: int, contiguous: bool) -> tuple[list[str], list[str]]:
        t = self.d.type
        if contiguous:
            def load(b, dt):
                return f"I{b}[i]"
        else:
            def load(b, dt):
                return f"*(const {t(dt)} *)(p[{n_out + b}] + i * s[{n_out + b}])"
        return self.body(k, load)

    def _unit_strides(self, dtypes: list[str], first: int) -> str:
        return " && ".join(f"s[{first + j}] == sizeof({self.d.type(dt)})"
                           for j, dt in enumerate(dtypes)) or "1"

    def _loop(self, body: list[str], tail: list[str], indent: str, simd: str) -> list[str]:
        lines = [f"{indent}{simd}"] if simd else []
        lines.append(f"{indent}{self.loop()} {{")
        lines += [f"{indent}    {b}" for b in body + tail]
        lines.append(f"{indent}}}")
        return lines

    def elementwise(self, k: Kernel) -> str:
        """An elementwise kernel: writes every output at each index of the run."""
        t = self.d.type
        n_out = len(k.outputs)
        lines = self._head(k)
        test = self._unit_strides(k.output_dtypes + [dt for dt, _ in k.inputs], 0)
        body, outs = self._body(k, n_out, True)
        lines.append(f"    if ({test}) {{")
        lines += self._pointers(k, n_out, k.output_dtypes)
        lines += self._loop(body, self.stores(outs, lambda j: f"O{j}[i]"),
                            "        ", "#pragma omp simd")
        lines.append("    } else {")
        body, outs = self._body(k, n_out, False)
        dts = k.output_dtypes
        lines += self._loop(body, self.stores(outs, lambda j: f"*({t(dts[j])} *)(p[{j}] + i * "
                                                              f"s[{j}])"), "        ", "")
        lines += ["    }", "}"]
        return "\n".join(lines)

    def reduction(self, k: Kernel) -> str:
        """A reduction kernel: operand 0 is the output (stride 0 along reduced axes): either
        one accumulator for the whole run, or one output element per index of the run."""
        d = self.d
        t = d.type
        acc = stored_accumulator_dtype(k, d)
        acc_t = t(acc)
        run_t = t(accumulator_dtype(k.reduce_op, k.acc_dtype, d))
        op = k.reduce_op
        lines = self._head(k)
        in_test = self._unit_strides([dt for dt, _ in k.inputs], 1)
        simd = {"add": "#pragma omp simd reduction(+:acc)",
                "mul": "#pragma omp simd reduction(*:acc)"}.get(op, "")
        lines.append("    if (s[0] == 0) {")
        lines.append(f"        {run_t} acc = *({acc_t} *)p[0];")
        body, outs = self._body(k, 1, True)
        lines.append(f"        if ({in_test}) {{")
        lines += ["    " + x for x in self._pointers(k, 1, [])]
        lines += self._loop(body, [f"acc = {combine(op, 'acc', outs[0], acc, d)};"],
                            "            ", simd)
        lines.append("        } else {")
        body, outs = self._body(k, 1, False)
        lines += self._loop(body, [f"acc = {combine(op, 'acc', outs[0], acc, d)};"],
                            "            ", "")
        lines += ["        }", f"        *({acc_t} *)p[0] = ({acc_t})acc;"]
        lines.append(f"    }} else if (s[0] == sizeof({acc_t}) && {in_test}) {{")
        body, outs = self._body(k, 1, True)
        lines += self._pointers(k, 1, [acc])
        lines += self._loop(body, [f"O0[i] = {combine(op, 'O0[i]', outs[0], acc, d)};"],
                            "        ", "#pragma omp simd")
        lines.append("    } else {")
        body, outs = self._body(k, 1, False)
        lines += self._loop(body, [f"{acc_t} *o = ({acc_t} *)(p[0] + i * s[0]);",
                                   f"*o = {combine(op, '*o', outs[0], acc, d)};"],
                            "        ", "")
        lines += ["    }", "}"]
        lines.append(f"static void {k.name}_combine(int64_t n, char *dst, const char *src)")
        lines.append("{")
        lines.append(f"    {acc_t} *d = ({acc_t} *)dst; const {acc_t} *q = (const {acc_t} *)src;")
        lines.append("    for (int64_t i = 0; i < n; ++i) "
                     f"d[i] = {combine(op, 'd[i]', 'q[i]', acc, d)};")
        lines.append("}")
        return "\n".join(lines)


def stored_accumulator_dtype(k: Kernel, d: Dialect) -> str:
    """The dtype a reduction's output is accumulated in between runs: the wider accumulator
    (`accumulator_dtype`) for a reduction to one value, whose strided input is added up run
    after run; the output's own dtype when axes are kept, where each output element takes few
    values per pass (as NumPy adds rows) and a wider copy of a large output would cost more
    memory traffic than the sum itself. Within one run a sum always adds in the wider type."""
    full = len(k.reduce_axes) == k.ndim
    return accumulator_dtype(k.reduce_op, k.acc_dtype, d) if full else k.acc_dtype
