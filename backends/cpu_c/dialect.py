"""The C dialect: kernels are inner-loop functions over a run of elements (NumPy's ufunc
model), called by runtime.h once per run; a contiguous version of each loop is vectorized. The
skeleton's pieces (names, declarations, loads, stores, the loop) are the GPU kernels' own
(theanine.codegen.skeleton); a C function is the one work-item of its run."""

from __future__ import annotations

from theanine.codegen.cstyle import Dialect, accumulator_dtype, combine
from theanine.codegen.ir import Const, Kernel, Load, Param, topo_exprs
from theanine.codegen.random_kernels import fast_draw, words_per_element
from theanine.codegen.skeleton import SkeletonRenderer

RUN = 1024  # elements whose random words a contiguous loop computes at a time
STEP = 64  # elements filled between two prefetches of the next RUN


class CDialect(Dialect):
    """Plain C99 with OpenMP."""

    name = "c"

    def prelude(self, body: str | None = None, random: bool | None = None) -> str:
        """The shared helpers, and with the random draws' helpers the block-wise Philox fill
        of contiguous drawing loops (philox.h)."""
        text = super().prelude(body, random)
        return text + '\n#include "philox.h"\n' if "th_philox_block" in text else text


MAX_FIXED = 4  # the most array inputs a kernel gets one-input-fixed loops for


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
        """Typed restrict pointers O<j> (outputs) and I<b> (array inputs) for the contiguous
        loop; index operands' first positions ix<b>."""
        slots = [*enumerate(self.outputs(out_dtypes)),
                 *((n_out + b, a) for b, a in enumerate(self.inputs(k))
                   if b not in k.index_inputs and b not in k.scalar_inputs)]
        lines = [f"        {self.declare(a)} = ({'const ' if a.const else ''}"
                 f"{self.d.type(a.dtype)} *)p[{slot}];" for slot, a in slots]
        lines += [f"        uint64_t ix{b} = {_position(n_out + b)};"
                  for b in sorted(k.index_inputs)]
        return lines

    def _scalars(self, k: Kernel, n_out: int) -> list[str]:
        """Inputs of one element read once per run (S<b>)."""
        t = self.d.type
        return [f"    const {t(dt)} S{b} = *(const {t(dt)} *)p[{n_out + b}];"
                for b, (dt, _) in enumerate(k.inputs) if b in k.scalar_inputs]

    def _body(self, k: Kernel, n_out: int, contiguous: bool,
              overrides: dict | None = None, fixed: int | None = None
              ) -> tuple[list[str], list[str]]:
        t = self.d.type
        if contiguous:
            def load(b, dt):
                if b == fixed:  # the same element for the whole run (stride 0)
                    return f"I{b}[0]"
                return f"S{b}" if b in k.scalar_inputs else f"I{b}[i]"

            def index(b):
                return f"(ix{b} + (uint64_t)i)"
        else:
            def load(b, dt):
                if b in k.scalar_inputs:
                    return f"S{b}"
                return f"*(const {t(dt)} *)(p[{n_out + b}] + i * s[{n_out + b}])"

            def index(b):
                return f"({_position(n_out + b)} + (uint64_t)(i * s[{n_out + b}]))"
        return self.r.body(k, load, lambda j: f"P{j}", index, overrides)

    def _unit_strides(self, k: Kernel, dtypes: list[str], first: int) -> str:
        """The test that the operands of `dtypes` (operands `first`.., k's inputs last) step
        by one element (an index operand by one; inputs read once per run are not tested)."""
        tests = []
        for j, dt in enumerate(dtypes):
            b = j - (len(dtypes) - len(k.inputs))
            if b in k.scalar_inputs:
                continue
            size = "1" if b in k.index_inputs else f"sizeof({self.d.type(dt)})"
            tests.append(f"s[{first + j}] == {size}")
        return " && ".join(tests) or "1"

    def _fixed_input_loops(self, k: Kernel, n_out: int) -> list[str]:
        """Vectorized loops for runs along which one array input stays put (stride 0, as a
        bias broadcast over an image's pixels), the other operands contiguous: that input is
        read once instead of sending the run to the strided loop. For kernels of 2 to
        MAX_FIXED array inputs, one loop each."""
        arrays = [b for b in range(len(k.inputs))
                  if b not in k.scalar_inputs and b not in k.index_inputs]
        if not 2 <= len(arrays) <= MAX_FIXED:
            return []
        lines = []
        for b in arrays:
            dtypes = k.output_dtypes + [dt for dt, _ in k.inputs]
            unit = self._unit_strides(k, dtypes, 0).split(" && ")
            test = " && ".join(u for u in unit if u != f"s[{n_out + b}] == "
                               f"sizeof({self.d.type(k.inputs[b][0])})")
            lines.append(f"    }} else if (s[{n_out + b}] == 0 && {test or '1'}) {{")
            lines += self._pointers(k, n_out, k.output_dtypes)
            body, outs = self._body(k, n_out, True, fixed=b)
            lines += self._loop(body, self.stores(outs, lambda j: f"O{j}[i]"), "        ",
                                "#pragma omp simd")
        return lines

    def _loop(self, body: list[str], tail: list[str], indent: str, simd: str,
              bound: str = "n") -> list[str]:
        lines = [f"{indent}{simd}"] if simd else []
        lines.append(f"{indent}{self.loop(bound)} {{")
        lines += [f"{indent}    {b}" for b in body + tail]
        lines.append(f"{indent}}}")
        return lines

    def elementwise(self, k: Kernel) -> str:
        """An elementwise kernel: writes every output at each index of the run. Draws whose
        index is the loop's (`fast_draw`) are computed a block of words for four elements at
        a time into a small buffer per stretch of RUN elements in the contiguous loop."""
        t = self.d.type
        n_out = len(k.outputs)
        lines = self._head(k) + self._scalars(k, n_out)
        test = self._unit_strides(k, k.output_dtypes + [dt for dt, _ in k.inputs], 0)
        draws = [e for e in topo_exprs(k.outputs) if fast_draw(e)
                 and all(_invariant(k, a) for a in e.args[:2])]
        lines.append(f"    if ({test}) {{")
        lines += self._pointers(k, n_out, k.output_dtypes)
        if draws:
            lines += self._drawing_loop(k, n_out, draws)
        else:
            body, outs = self._body(k, n_out, True)
            lines += self._loop(body, self.stores(outs, lambda j: f"O{j}[i]"), "        ",
                                "#pragma omp simd")
            lines += self._fixed_input_loops(k, n_out)
        lines.append("    } else {")
        body, outs = self._body(k, n_out, False)
        dts = k.output_dtypes
        lines += self._loop(body, self.stores(outs, lambda j: f"*({t(dts[j])} *)(p[{j}] + i * "
                                                              f"s[{j}])"), "        ", "")
        lines += ["    }", "}"]
        return "\n".join(lines)

    def _drawing_loop(self, k: Kernel, n_out: int, draws: list) -> list[str]:
        """The contiguous loop in stretches of RUN elements: each draw's words for the stretch
        first (th_philox_fill, STEP elements at a time, each followed by a prefetch of the
        arrays' share of the next stretch, so memory streams in while Philox computes), then
        the vectorized loop reading them."""
        overrides, fills = {}, []
        for d, e in enumerate(draws):
            w = words_per_element(e.op)
            key, ctr = (self._invariant_text(k, a) for a in e.args[:2])
            b = e.args[2].buf
            fills.append(f"th_philox_fill(R{d} + q * {w}, {key}, {ctr}, "
                         f"(ix{b} + (uint64_t)q) * {w}u, (qn < {STEP} ? qn : {STEP}) * {w});")
            words = ", ".join(f"R{d}[i * {w} + {j}]" for j in range(w))
            overrides[e] = f"th_{e.op.replace('random_', '')}_words({words})"
        arrays = [f"O{j}" for j in range(n_out)] + \
            [f"I{b}" for b in range(len(k.inputs))
             if b not in k.index_inputs and b not in k.scalar_inputs]
        prefetch = [f"th_prefetch(&{a}[{RUN} + q], {STEP} * sizeof(*{a}));" for a in arrays]
        body, outs = self._body(k, n_out, True, overrides)
        lines = [f"        for (int64_t c0 = 0; c0 < n; c0 += {RUN}) {{",
                 f"            const int64_t cn = n - c0 < {RUN} ? n - c0 : {RUN};"]
        lines += [f"            uint32_t R{d}[{RUN * words_per_element(e.op)}];"
                  for d, e in enumerate(draws)]
        lines.append(f"            for (int64_t q = 0, qn = cn; qn > 0; q += {STEP}, "
                     f"qn -= {STEP}) {{")
        lines += [f"                {x}" for x in fills + prefetch]
        lines.append("            }")
        lines += self._loop(body, self.stores(outs, lambda j: f"O{j}[i]"), "            ",
                            "#pragma omp simd", "cn")
        # the next stretch: every array and index operand moves on by cn elements
        moved = arrays + [f"ix{b}" for b in sorted(k.index_inputs)]
        lines.append("            " + " ".join(f"{a} += cn;" for a in moved))
        lines.append("        }")
        return lines

    def _invariant_text(self, k: Kernel, e) -> str:
        """C text of a loop-invariant draw argument (an input read once, a parameter or a
        literal), as uint64."""
        if isinstance(e, Load):
            text = f"S{e.buf}"
        elif isinstance(e, Param):
            text = f"P{e.index}"
        else:
            text = self.r.literal(e.value, e.dtype)
        return self.r.cast(text, e.dtype, "uint64")

    def reduction(self, k: Kernel) -> str:
        """A reduction kernel: operand 0 is the output (stride 0 along reduced axes): either
        one accumulator for the whole run, or one output element per index of the run."""
        d = self.d
        t = d.type
        acc = stored_accumulator_dtype(k, d)
        acc_t = t(acc)
        run_t = t(accumulator_dtype(k.reduce_op, k.acc_dtype, d))
        op = k.reduce_op
        lines = self._head(k) + self._scalars(k, 1)
        in_test = self._unit_strides(k, [dt for dt, _ in k.inputs], 1)
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


def _position(slot: int) -> str:
    """An index operand's flat index at the current pointer of operand `slot` (its base is
    th_index_origin, its strides are in index units: steps.h's th_index_operand)."""
    return f"(uint64_t)((uintptr_t)p[{slot}] - (uintptr_t)th_index_origin)"


def _invariant(k: Kernel, e) -> bool:
    """True for an expression with one value over the whole run."""
    return isinstance(e, (Param, Const)) or (isinstance(e, Load) and e.buf in k.scalar_inputs)
