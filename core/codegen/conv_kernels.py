"""Hand-written device kernels for 2-d convolution and pooling (and their gradients), printed
through a GpuRenderer's dialect like its GEMM, for the GPU backends' conv entries
(theanine.gpu.conv).

Every kernel takes its geometry as int64 arguments (one kernel per dtype combination, whatever
the shapes, padding or strides), reads its inputs through their offsets and four strides (in
elements, so views need no copy) and writes a new contiguous output O0 from offset offO0:

- conv2d: one work-item per output element, summing over its group's channels and the taps
  that land inside the image (padding is never read); Conv2dBiasAct adds its bias and
  activation before the store.
- conv2d gradient of the inputs: one work-item per input element, summing over the taps and
  filters whose output position (y*sub + i*dil - pad) hits it (stride divisibility checked),
  so no two work-items write one element and no atomics are needed.
- conv2d gradient of the filters: one weight element per work-group, its work-items sharing
  the N*oh*ow products and finishing with the renderer's in-group reduction; on CPU devices
  one work-item per weight element, with no local memory or barriers.
- pooling: one work-item per output element (forward, max pooling's second derivative) or per
  input element (the gradients, looping over the windows that contain it, in the order the
  NumPy reference adds them). Pooled arrays are 4-d: two leading axes of planes.
"""

from __future__ import annotations

from theanine.codegen.cstyle import reduce_identity
from theanine.codegen.gpu import GpuRenderer
from theanine.codegen.skeleton import KernelArg, KernelSource, int64_arg

CONV_GEOMETRY = ("N", "C", "H", "W", "F", "Cg", "Fg", "kh", "kw", "oh", "ow", "pad_y", "pad_x",
                 "sub_y", "sub_x", "dil_y", "dil_x", "flip")
POOL_GEOMETRY = ("P0", "P1", "H", "W", "oh", "ow", "ws_y", "ws_x", "st_y", "st_x", "pad_y",
                 "pad_x", "mode")
POOL_MODES = {"max": 0, "sum": 1, "average_inc_pad": 2, "average_exc_pad": 3}


def _array(name: str, dtype: str) -> list[KernelArg]:
    """A read-only 4-d array argument: pointer, offset and strides (<name>_s0 .. _s3)."""
    return [KernelArg(name, dtype, pointer=True), int64_arg(f"off_{name}"),
            *(int64_arg(f"{name}_s{a}") for a in range(4))]


def _out(dtype: str) -> list[KernelArg]:
    """The output O0 (contiguous, written at offO0 + its flat index), named as the renderer's
    in-group reduction writes it."""
    return [KernelArg("O0", dtype, pointer=True, const=False), int64_arg("offO0")]


def _at(name: str, *index: str) -> str:
    """C text of element `index` of 4-d array argument `name`."""
    terms = " + ".join(f"({i}) * {name}_s{a}" for a, i in enumerate(index))
    return f"{name}[off_{name} + {terms}]"


def _decode(flat: str, names: tuple[str, ...], dims: tuple[str, ...]) -> list[str]:
    """Statements unravelling `flat` into int64 coordinates `names` of extents `dims` (the
    first name slowest)."""
    rest = f"r_{flat}"
    lines = [f"int64_t {rest} = {flat};"]
    for name, dim in zip(reversed(names[1:]), reversed(dims[1:])):
        lines.append(f"const int64_t {name} = {rest} % {dim}; {rest} /= {dim};")
    return lines + [f"const int64_t {names[0]} = {rest};"]


# -- convolution -------------------------------------------------------------------------------
def _activation(r: GpuRenderer, activation: str, dtype: str) -> list[str]:
    """Statements applying Conv2dBiasAct's `activation` to `acc` as NumPy does (relu keeps
    NaN, like np.maximum)."""
    one = r.r.literal(1, dtype)
    return {"identity": [],
            "relu": [f"if (acc < {r.r.literal(0, dtype)}) acc = {r.r.literal(0, dtype)};"],
            "tanh": [f"acc = {r.d.math('tanh', dtype)}(acc);"],
            "sigmoid": [f"acc = {one} / ({one} + {r.d.math('exp', dtype)}(-acc));"]}[activation]


def conv2d_forward(r: GpuRenderer, name: str, dtype: str, img_t: str, fil_t: str,
                   bias_t: str | None = None, activation: str = "identity") -> KernelSource:
    """`name(geometry..., img, fil, [bias, off_bias, bias_s0,] O0, offO0)`: O0 (N, F, oh, ow)
    = the convolution of img (N, C, H, W) with filters fil (F, Cg, kh, kw), accumulated in
    `dtype`; with `bias_t`, plus bias[f] and then `activation` (Conv2dBiasAct's epilogue)."""
    t = r.d.type(dtype)
    args = [int64_arg(n) for n in CONV_GEOMETRY] + _array("img", img_t) + _array("fil", fil_t)
    epilogue = []
    if bias_t is not None:
        args += [KernelArg("bias", bias_t, pointer=True), int64_arg("off_bias"),
                 int64_arg("bias_s0")]
        bias = r.r.cast("bias[off_bias + f * bias_s0]", bias_t, dtype)
        epilogue = [f"acc += {bias};", *_activation(r, activation, dtype)]
    args += _out(dtype)
    x = r.r.cast(_at("img", "b", "gr * Cg + c", "iy", "ix"), img_t, dtype)
    w = r.r.cast(_at("fil", "f", "c", "flip ? kh - 1 - i : i", "flip ? kw - 1 - j : j"),
              fil_t, dtype)
    lines = [f"    {r.loop('N * F * oh * ow', 'q')} {{",
             *("        " + s for s in _decode("q", ("b", "f", "y", "x"), ("N", "F", "oh", "ow"))),
             "        const int64_t gr = f / Fg;",
             f"        {t} acc = {r.r.literal(0, dtype)};",
             "        for (int64_t i = 0; i < kh; ++i) {",
             "            const int64_t iy = y * sub_y + i * dil_y - pad_y;",
             "            if (iy < 0 || iy >= H) continue;",
             "            for (int64_t j = 0; j < kw; ++j) {",
             "                const int64_t ix = x * sub_x + j * dil_x - pad_x;",
             "                if (ix < 0 || ix >= W) continue;",
             f"                for (int64_t c = 0; c < Cg; ++c) acc += {x} * {w};",
             "            }",
             "        }",
             *("        " + s for s in epilogue),
             "        O0[offO0 + q] = acc;",
             "    }"]
    return r.function(name, args, lines)


def conv2d_grad_inputs(r: GpuRenderer, name: str, dtype: str, fil_t: str,
                       top_t: str) -> KernelSource:
    """`name(geometry..., fil, top, O0, offO0)`: O0 (N, C, H, W), the gradient of the input, from
    the filters fil (F, Cg, kh, kw) and the output's gradient top (N, F, oh, ow)."""
    t = r.d.type(dtype)
    args = [int64_arg(n) for n in CONV_GEOMETRY] + _array("fil", fil_t) + \
        _array("top", top_t) + _out(dtype)
    w = r.r.cast(_at("fil", "f", "c", "flip ? kh - 1 - i : i", "flip ? kw - 1 - j : j"),
              fil_t, dtype)
    g = r.r.cast(_at("top", "b", "f", "y", "x"), top_t, dtype)
    lines = [f"    {r.loop('N * C * H * W', 'q')} {{",
             *("        " + s for s in _decode("q", ("b", "ch", "iy", "ix"), ("N", "C", "H", "W"))),
             "        const int64_t gr = ch / Cg, c = ch % Cg;",
             f"        {t} acc = {r.r.literal(0, dtype)};",
             "        for (int64_t i = 0; i < kh; ++i) {",
             "            const int64_t ty = iy + pad_y - i * dil_y;",
             "            if (ty < 0) break;",
             "            const int64_t y = ty / sub_y;",
             "            if (ty % sub_y || y >= oh) continue;",
             "            for (int64_t j = 0; j < kw; ++j) {",
             "                const int64_t tx = ix + pad_x - j * dil_x;",
             "                if (tx < 0) break;",
             "                const int64_t x = tx / sub_x;",
             "                if (tx % sub_x || x >= ow) continue;",
             "                for (int64_t f = gr * Fg; f < (gr + 1) * Fg; ++f) "
             f"acc += {g} * {w};",
             "            }",
             "        }",
             "        O0[offO0 + q] = acc;",
             "    }"]
    return r.function(name, args, lines)


def conv2d_grad_weights(r: GpuRenderer, name: str, dtype: str, img_t: str,
                        top_t: str) -> KernelSource:
    """`name(geometry..., img, top, O0, offO0)`: O0 (F, Cg, kh, kw), the gradient of the filters,
    from the input img (N, C, H, W) and the output's gradient top (N, F, oh, ow). On a GPU,
    launch one work-group per weight element (any number of groups); on a CPU device, one
    work-item per weight element."""
    d = r.d
    t = d.type(dtype)
    args = [int64_arg(n) for n in CONV_GEOMETRY] + _array("img", img_t) + \
        _array("top", top_t) + _out(dtype)
    x = r.r.cast(_at("img", "b", "gr * Cg + c", "iy", "ix"), img_t, dtype)
    g = r.r.cast(_at("top", "b", "f", "y", "x"), top_t, dtype)
    decode = _decode("g", ("f", "c", "wi", "wj"), ("F", "Cg", "kh", "kw"))
    taps = ["const int64_t gr = f / Fg;",
            "const int64_t i = flip ? kh - 1 - wi : wi, j = flip ? kw - 1 - wj : wj;",
            f"{t} acc = {r.r.literal(0, dtype)};"]
    product = ["const int64_t iy = y * sub_y + i * dil_y - pad_y;",
               "const int64_t ix = x * sub_x + j * dil_x - pad_x;",
               f"if (iy >= 0 && iy < H && ix >= 0 && ix < W) acc += {g} * {x};"]
    if r.cpu:
        lines = [f"    {r.loop('F * Cg * kh * kw', 'g')} {{",
                 *("        " + s for s in decode + taps),
                 "        for (int64_t b = 0; b < N; ++b)",
                 "            for (int64_t y = 0; y < oh; ++y)",
                 "                for (int64_t x = 0; x < ow; ++x) {",
                 *("                    " + s for s in product),
                 "                }",
                 "        O0[offO0 + g] = acc;",
                 "    }"]
        return r.function(name, args, lines)
    lines = [f"    {d.local_qualifier} {t} part[{r.workgroup}];",
             f"    const int64_t lid = {d.work_item('local_id')};",
             f"    for (int64_t g = {d.work_item('group_id')}; g < F * Cg * kh * kw; "
             f"g += {d.work_item('num_groups')}) {{",
             *("        " + s for s in decode + taps),
             f"        for (int64_t k = lid; k < N * oh * ow; k += {r.workgroup}) {{",
             *("            " + s for s in _decode("k", ("b", "y", "x"), ("N", "oh", "ow"))),
             *("            " + s for s in product),
             "        }",
             *("        " + s for s in r.group_reduce("add", dtype)),  # acc -> O0[offO0 + g]
             "    }"]
    return r.function(name, args, lines)


# -- pooling -----------------------------------------------------------------------------------
def _window(y: str, x: str) -> list[str]:
    """Statements giving window (y, x)'s input rows [r0, r1) and columns [c0, c1), clipped to
    the image, and its divisor `cnt` for the average modes: its extent in the padded image
    for average_inc_pad, its input elements for average_exc_pad."""
    lines = []
    for v, lo, hi, n, ws, st, pad in ((y, "r0", "r1", "H", "ws_y", "st_y", "pad_y"),
                                      (x, "c0", "c1", "W", "ws_x", "st_x", "pad_x")):
        a, b = f"{lo}_p", f"{hi}_p"
        lines += [f"const int64_t {a} = {v} * {st};",
                  f"const int64_t {b} = {a} + {ws} < {n} + 2 * {pad} ? {a} + {ws} : "
                  f"{n} + 2 * {pad};",
                  f"const int64_t {lo} = {a} > {pad} ? {a} - {pad} : 0;",
                  f"int64_t {hi} = {b} - {pad} < {n} ? {b} - {pad} : {n};",
                  f"if ({hi} < {lo}) {hi} = {lo};"]
    return lines + ["const int64_t cnt = mode == 2 ? (r1_p - r0_p) * (c1_p - c0_p) : "
                    "(r1 - r0) * (c1 - c0);"]


def _pool_args(*arrays: tuple[str, str]) -> list[KernelArg]:
    return [int64_arg(n) for n in POOL_GEOMETRY] + \
        [a for name, dt in arrays for a in _array(name, dt)]


def _per_output(r: GpuRenderer, body: list[str]) -> list[str]:
    """A grid-stride loop over the pooled elements (p0, p1, y, x) with the window's span."""
    decode = _decode("q", ("p0", "p1", "y", "x"), ("P0", "P1", "oh", "ow"))
    return [f"    {r.loop('P0 * P1 * oh * ow', 'q')} {{",
            *("        " + s for s in decode + _window("y", "x") + body), "    }"]


def _per_input(r: GpuRenderer, dtype: str, before: list[str], each: list[str]) -> list[str]:
    """A grid-stride loop over the input elements (p0, p1, iy, ix) running `each` (which adds
    to `acc`) for every window (y, x) containing the element, in the order the reference adds
    them (window offsets (i, j) row-major); `before` runs first."""
    decode = _decode("q", ("p0", "p1", "iy", "ix"), ("P0", "P1", "H", "W"))
    return [f"    {r.loop('P0 * P1 * H * W', 'q')} {{",
            *("        " + s for s in decode + before),
            f"        {r.d.type(dtype)} acc = {r.r.literal(0, dtype)};",
            "        for (int64_t i = 0; i < ws_y; ++i) {",
            "            const int64_t ty = iy + pad_y - i;",
            "            if (ty < 0) break;",
            "            const int64_t y = ty / st_y;",
            "            if (ty % st_y || y >= oh) continue;",
            "            for (int64_t j = 0; j < ws_x; ++j) {",
            "                const int64_t tx = ix + pad_x - j;",
            "                if (tx < 0) break;",
            "                const int64_t x = tx / st_x;",
            "                if (tx % st_x || x >= ow) continue;",
            *("                " + s for s in each),
            "            }",
            "        }",
            "        O0[offO0 + q] = acc;",
            "    }"]


def pool_forward(r: GpuRenderer, name: str, dtype: str) -> KernelSource:
    """`name(geometry..., img, O0, offO0)`: O0 (P0, P1, oh, ow) pools img (P0, P1, H, W) in
    `mode` (POOL_MODES): max skips padding and propagates NaN as np.maximum does; sums add
    in window order."""
    t = r.d.type(dtype)
    v = _at("img", "p0", "p1", "rr", "cc")
    body = [f"{t} acc;",
            "if (mode == 0) {",
            f"    acc = {reduce_identity('max', dtype, r.d)};",
            "    for (int64_t rr = r0; rr < r1; ++rr)",
            "        for (int64_t cc = c0; cc < c1; ++cc) {",
            f"            const {t} v = {v};",
            f"            if ({'v > acc || v != v' if dtype in r.d.float_dtypes else 'v > acc'}) "
            "acc = v;  /* a NaN stays: v > NaN is false */",
            "        }",
            "} else {",
            f"    acc = {r.r.literal(0, dtype)};",
            "    for (int64_t rr = r0; rr < r1; ++rr)",
            f"        for (int64_t cc = c0; cc < c1; ++cc) acc += {v};",
            f"    if (mode != 1) acc = acc / ({t})cnt;",
            "}",
            "O0[offO0 + q] = acc;"]
    return r.function(name, _pool_args(("img", dtype)) + _out(dtype), _per_output(r, body))


def max_pool_grad(r: GpuRenderer, name: str, img_t: str, grad_t: str) -> KernelSource:
    """`name(geometry..., img, pooled, grad, O0, offO0)`: O0 (img's shape) gets grad (pooled's
    shape) at every element of a window equal to the window's maximum `pooled`."""
    args = _pool_args(("img", img_t), ("pooled", img_t), ("grad", grad_t)) + _out(grad_t)
    before = [f"const {r.d.type(img_t)} v = {_at('img', 'p0', 'p1', 'iy', 'ix')};"]
    each = [f"if (v == {_at('pooled', 'p0', 'p1', 'y', 'x')}) "
            f"acc += {_at('grad', 'p0', 'p1', 'y', 'x')};"]
    return r.function(name, args, _per_input(r, grad_t, before, each))


def average_pool_grad(r: GpuRenderer, name: str, dtype: str) -> KernelSource:
    """`name(geometry..., grad, O0, offO0)`: O0 (P0, P1, H, W) gets grad / divisor (grad
    itself in sum mode) from every window containing the element."""
    t = r.d.type(dtype)
    g = _at("grad", "p0", "p1", "y", "x")
    each = [*_window("y", "x"), f"acc += mode == 1 ? {g} : {g} / ({t})cnt;"]
    return r.function(name, _pool_args(("grad", dtype)) + _out(dtype),
                      _per_input(r, dtype, [], each))


def max_pool_grad_grad(r: GpuRenderer, name: str, img_t: str, grad_t: str) -> KernelSource:
    """`name(geometry..., img, pooled, grad, O0, offO0)`: O0 (pooled's shape) sums grad (img's
    shape) over each window's elements equal to its maximum `pooled`."""
    t = r.d.type(grad_t)
    body = [f"const {r.d.type(img_t)} m = {_at('pooled', 'p0', 'p1', 'y', 'x')};",
            f"{t} acc = {r.r.literal(0, grad_t)};",
            "for (int64_t rr = r0; rr < r1; ++rr)",
            "    for (int64_t cc = c0; cc < c1; ++cc)",
            f"        if ({_at('img', 'p0', 'p1', 'rr', 'cc')} == m) "
            f"acc += {_at('grad', 'p0', 'p1', 'rr', 'cc')};",
            "O0[offO0 + q] = acc;"]
    args = _pool_args(("img", img_t), ("pooled", img_t), ("grad", grad_t)) + _out(grad_t)
    return r.function(name, args, _per_output(r, body))
