"""Matrix products: MatMul, Gemm, MatMulInteger, QLinearMatMul, Einsum.

Each product is one reduction (a tensor expression per output element, summed over the
contracted axes), with the epilogue (alpha/beta, bias, requantization, cast) in a second
compute. Half-precision inputs accumulate in float32; integer products accumulate in their
own dtype (wrapping, like NumPy).

A float32 MatMul of two matrices or stacks of matrices (both operands of rank 2 or more)
reads B through a packing stage (``packed_matmul``): ``B[..., K, N]`` copied at run time
into column panels ``[..., ceil(N / nr), K, nr]`` (zero-padded, like the compile-time
panels of ``dlc.ops.dense``), summed into a tensor tagged ``matmul`` whose columns cover
whole panels. The schedule ``matmul`` (``dlc.schedules.cpu.matmul``) computes the panels
inside the kernel's loops, a slice at a time (or inlines them: B read in place, for few
rows), and runs a register-blocked micro-kernel on them.
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes, te
from dlc.ops.common import accumulation_dtype, broadcast_read, broadcast_shapes, out_type
from dlc.ops.conv import QTYPES, np_requantize, requantize
from dlc.ops.dense import panel_width
from dlc.ops.registry import COMPLEX, FLOATS, OpDef, check_dtype, register

MATMUL_DTYPES = FLOATS + ("int32", "int64", "uint32", "uint64")
#: Products computed through packed panels of B (``packed_matmul``).
PACKED_DTYPES = ("float32",)
#: Tags of the stages of ``packed_matmul``: the sum, and the panels of B.
MATMUL_TAG = "matmul"
PACK_B_TAG = "matmul_pack_b"


def np_acc(dtype) -> np.dtype:
    """NumPy accumulation dtype of a reference (float32 for half precision)."""
    return np.dtype(np.float32) if dtype.itemsize < 4 and dtype.kind == "f" or \
        dtype.name == "bfloat16" else dtype


# -- MatMul ----------------------------------------------------------------------------------
def matmul_shape(ctx, a_shape, b_shape) -> tuple:
    """numpy.matmul's output shape (1-D operands are promoted, then the axis dropped)."""
    if not a_shape or not b_shape:
        raise ctx.error("MatMul operands must have rank 1 or more")
    a2 = (1,) + tuple(a_shape) if len(a_shape) == 1 else tuple(a_shape)
    b2 = tuple(b_shape) + (1,) if len(b_shape) == 1 else tuple(b_shape)
    if a2[-1] != b2[-2]:
        raise ctx.error(f"shapes {list(a_shape)} and {list(b_shape)} cannot be multiplied "
                        f"(inner dimensions {a2[-1]} and {b2[-2]} differ)")
    batch = broadcast_shapes(ctx, a2[:-2], b2[:-2])
    out = batch + ((a2[-2],) if len(a_shape) > 1 else ()) + ((b2[-1],) if len(b_shape) > 1
                                                              else ())
    return out


def matmul_sum(a, b, acc: str, name: str, aval=None, bval=None) -> te.Tensor:
    """``sum_k aval(A[..., i, k], full) * bval(B[..., k, j], full)`` with matmul's
    broadcasting and 1-D rules; ``full`` is the output index with the row and column of
    1-D operands as 0 (always ``batch + (i, j)``)."""
    a_shape, b_shape = a.shape, b.shape
    K = a_shape[-1]
    a_rows, b_cols = len(a_shape) > 1, len(b_shape) > 1
    a2 = (1,) + a_shape if not a_rows else a_shape
    b2 = b_shape + (1,) if not b_cols else b_shape
    batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    out = tuple(batch) + ((a2[-2],) if a_rows else ()) + ((b2[-1],) if b_cols else ())
    aval = aval or (lambda v, full: te.cast(v, acc))
    bval = bval or (lambda v, full: te.cast(v, acc))
    k = te.reduce_axis(K, "k")
    nb = len(batch)

    def body(*idx):
        bidx = idx[:nb]
        i = idx[nb] if a_rows else te.const(0, "int64")
        j = idx[-1] if b_cols else te.const(0, "int64")
        full = tuple(bidx) + (i, j)
        a_idx = _batch_index(a_shape[:-2], bidx) + ((i,) if a_rows else ()) + (k,)
        b_idx = _batch_index(b_shape[:-2], bidx) + (k,) + ((j,) if b_cols else ())
        return te.sum(aval(a[a_idx], full) * bval(b[b_idx], full), axis=k)

    return te.compute(out, body, name=name)


def packs_b(a_shape, b_shape, dtype: str) -> bool:
    """Whether MatMul computes ``A @ B`` through packed panels of B (``packed_matmul``):
    float32 operands of rank 2 or more and a non-empty reduction (1-D operands keep the
    plain reduction)."""
    return dtype in PACKED_DTYPES and len(a_shape) >= 2 and len(b_shape) >= 2 and \
        a_shape[-1] > 0


def packed_matmul(a: te.Tensor, b: te.Tensor, name: str, hw) -> te.Tensor:
    """``A[..., M, K] @ B[..., K, N]`` (batch dimensions broadcast) through B packed into
    column panels of ``nr = panel_width(N, hw)`` (``hw``: the target's CpuInfo):
    ``Bp[..., j // nr, k, j % nr] = B[..., k, j]``
    (zero past column N), then ``S[..., i, j] = sum_k A[..., i, k] * Bp[..., j // nr, k,
    j % nr]`` over whole panels (tag ``matmul``, attribute ``nr``); when ``nr`` does not
    divide N the result is a copy of the first N columns of S."""
    a_batch, (M, K) = tuple(a.shape[:-2]), tuple(a.shape[-2:])
    b_batch, N = tuple(b.shape[:-2]), b.shape[-1]
    batch = tuple(np.broadcast_shapes(a_batch, b_batch))
    nr = panel_width(N, hw)
    panels = -(-N // nr)
    padded = panels * nr != N
    zero = te.const(0, b.dtype)

    def pack(*idx):
        *bb, jo, k, ji = idx
        j = jo * nr + ji
        value = b[tuple(bb) + (k, j)]
        return te.if_then_else(j < N, value, zero) if padded else value

    bp = te.compute(b_batch + (panels, K, nr), pack, name=f"{name}_packed_b", tag=PACK_B_TAG)
    k = te.reduce_axis(K, "k")
    nb = len(batch)

    def body(*idx):
        bidx, i, j = idx[:nb], idx[nb], idx[nb + 1]
        return te.sum(a[_batch_index(a_batch, bidx) + (i, k)]
                      * bp[_batch_index(b_batch, bidx) + (j // nr, k, j % nr)], axis=k)

    total = te.compute(batch + (M, panels * nr), body, name=f"{name}_sum" if padded else name,
                       tag=MATMUL_TAG, attrs={"nr": nr})
    if not padded:
        return total
    return te.compute(batch + (M, N), lambda *idx: total[idx], name=name)


def full_index(idx, a_rank: int, b_rank: int) -> tuple:
    """An output index of matmul extended to ``batch + (i, j)`` (0 for 1-D operands)."""
    idx = tuple(idx)
    if a_rank == 1:
        idx = idx[:len(idx) - (1 if b_rank > 1 else 0)] + (0,) + \
            (idx[-1:] if b_rank > 1 else ())
    if b_rank == 1:
        idx = idx + (0,)
    return idx


def _batch_index(shape, bidx) -> tuple:
    """Broadcast read index of batch dims ``shape`` at output batch index ``bidx``."""
    off = len(bidx) - len(shape)
    return tuple(0 if s == 1 else bidx[off + d] for d, s in enumerate(shape))


def finish(total: te.Tensor, dtype: str, name: str, epilogue=None) -> te.Tensor:
    """``total`` converted to ``dtype`` through ``epilogue(value, index)``; ``total`` itself
    when nothing is left to do."""
    if epilogue is None and total.dtype == dtype:
        return total
    epilogue = epilogue or (lambda v, i: v)
    return te.compute(total.shape, lambda *i: te.cast(epilogue(total[i], i), dtype), name=name)


@register
class MatMul(OpDef):
    name = "MatMul"
    pattern = COMPLEX
    num_inputs = (2, 2)
    schedule = "matmul"

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, MATMUL_DTYPES)
        if ctx.type(1).dtype != dtype:
            raise ctx.error(f"A is {dtype} but B is {ctx.type(1).dtype}")
        return [out_type(matmul_shape(ctx, ctx.type(0).shape, ctx.type(1).shape), dtype)]

    def reference(self, ctx, a, b):
        acc = np_acc(a.dtype)
        return [np.matmul(a.astype(acc), b.astype(acc)).astype(a.dtype)]

    def compute(self, ctx, a, b):
        name = ctx.name or self.name
        if packs_b(a.shape, b.shape, a.dtype):
            return [packed_matmul(a, b, name, ctx.hardware)]
        acc = accumulation_dtype(a.dtype)
        total = matmul_sum(a, b, acc, name if acc == a.dtype else f"{name}_sum")
        return [finish(total, a.dtype, name)]


# -- Gemm ------------------------------------------------------------------------------------
@register
class Gemm(OpDef):
    """``alpha * A' @ B' + beta * C`` (C broadcast to [M, N]; ignored when beta is 0).
    Integer inputs with alpha and beta in {0, 1} stay integer; otherwise the epilogue is
    computed in float64 and truncated back (like ONNX's reference)."""

    name = "Gemm"
    pattern = COMPLEX
    num_inputs = (2, 3)
    attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}

    def dims(self, ctx):
        at, bt = ctx.type(0), ctx.type(1)
        if at.ndim != 2 or bt.ndim != 2:
            raise ctx.error(f"A and B must be matrices, got shapes {list(at.shape)} and "
                            f"{list(bt.shape)}")
        M, K = at.shape[::-1] if ctx.attrs["transA"] else at.shape
        K2, N = bt.shape[::-1] if ctx.attrs["transB"] else bt.shape
        if K != K2:
            raise ctx.error(f"A' is {M}x{K} but B' is {K2}x{N} (transA={ctx.attrs['transA']}, "
                            f"transB={ctx.attrs['transB']})")
        return M, N, K

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, MATMUL_DTYPES)
        for k in (1, 2):
            if ctx.has_input(k) and ctx.type(k).dtype != dtype:
                raise ctx.error(f"input {k} is {ctx.type(k).dtype}; expected {dtype}")
        M, N, _ = self.dims(ctx)
        if ctx.has_input(2):
            c = ctx.type(2).shape
            if len(c) > 2 or broadcast_shapes(ctx, c, (M, N)) != (M, N):
                raise ctx.error(f"C of shape {list(c)} cannot be broadcast to [{M}, {N}]")
        return [out_type((M, N), dtype)]

    def integer_exact(self, ctx) -> bool:
        return ctx.attrs["alpha"] in (0.0, 1.0) and ctx.attrs["beta"] in (0.0, 1.0)

    def reference(self, ctx, a, b, c=None):
        alpha, beta = float(ctx.attrs["alpha"]), float(ctx.attrs["beta"])
        a = a.T if ctx.attrs["transA"] else a
        b = b.T if ctx.attrs["transB"] else b
        floats = a.dtype.kind == "f" or a.dtype.name == "bfloat16"
        acc = np_acc(a.dtype) if floats or self.integer_exact(ctx) else np.float64
        y = np.matmul(a.astype(np_acc(a.dtype)), b.astype(np_acc(a.dtype))).astype(acc)
        if alpha != 1.0:
            y = y * acc.type(alpha)
        if c is not None and beta != 0.0:
            cc = c.astype(acc)
            y = y + (cc if beta == 1.0 else cc * acc.type(beta))
        return [y.astype(a.dtype)]

    def compute(self, ctx, a, b, c=None):
        M, N, K = self.dims(ctx)
        alpha, beta = float(ctx.attrs["alpha"]), float(ctx.attrs["beta"])
        ta, tb = ctx.attrs["transA"], ctx.attrs["transB"]
        name = ctx.name or self.name
        acc = accumulation_dtype(a.dtype)
        k = te.reduce_axis(K, "k")
        total = te.compute((M, N), lambda i, j: te.sum(
            te.cast(a[k, i] if ta else a[i, k], acc) * te.cast(b[j, k] if tb else b[k, j], acc),
            axis=k), name=f"{name}_sum")
        use_c = c is not None and beta != 0.0
        if alpha == 1.0 and not use_c:
            return [finish(total, a.dtype, name)]
        work = acc if dtypes.is_float(a.dtype) or self.integer_exact(ctx) else "float64"

        def epilogue(v, idx):
            v = te.cast(v, work)
            if alpha != 1.0:
                v = v * te.const(alpha, work)
            if use_c:
                cv = te.cast(broadcast_read(c, idx), work)
                v = v + (cv if beta == 1.0 else cv * te.const(beta, work))
            return v

        return [finish(total, a.dtype, name, epilogue)]


# -- integer and quantized matmuls ------------------------------------------------------------
def param_shape(shape, per: str) -> tuple:
    """A zero point's / scale's shape as it broadcasts against ``batch + (M, N)``: a 1-D
    per-row vector of length M > 1 stands for [M, 1]."""
    shape = tuple(shape)
    return shape + (1,) if per == "row" and len(shape) == 1 and shape[0] > 1 else shape


def check_qparam(ctx, index: int, full_out, per: str, what: str, allowed=None):
    """A zero point / scale of A (``per="row"``: scalar, [M], [..., M, 1]) or of B
    (``per="col"``: scalar, [N], [..., 1, N])."""
    if not ctx.has_input(index):
        return
    t = ctx.type(index)
    if allowed is not None and t.dtype not in allowed:
        raise ctx.error(f"{what} has dtype {t.dtype}; expected {' or '.join(allowed)}")
    shape = param_shape(t.shape, per)
    ok = len(shape) <= len(full_out) and all(
        s in (1, o) for s, o in zip(shape[::-1], full_out[::-1]))
    if per == "row" and shape and shape[-1] != 1:
        ok = False
    if per == "col" and len(shape) >= 2 and shape[-2] != 1:
        ok = False
    if not ok:
        raise ctx.error(f"{what} has shape {list(t.shape)}; expected a scalar or per-{per} "
                        f"values for the product of shape {list(full_out)}")


def full_out_shape(a_shape, b_shape) -> tuple:
    a2 = (1,) + tuple(a_shape) if len(a_shape) == 1 else tuple(a_shape)
    b2 = tuple(b_shape) + (1,) if len(b_shape) == 1 else tuple(b_shape)
    return tuple(np.broadcast_shapes(a2[:-2], b2[:-2])) + (a2[-2], b2[-1])


def qparam_read(p, per: str, full):
    """A zero point / scale for the output element at ``full`` (``batch + (i, j)``)."""
    if per == "row" and p.ndim == 1 and p.shape[0] > 1:
        return p[full[-2]]
    return broadcast_read(p, full)


def np_promoted(a, b):
    """NumPy: both operands as matrices (1-D promoted like numpy.matmul)."""
    return (a[None] if a.ndim == 1 else a), (b[:, None] if b.ndim == 1 else b)


def np_param(value, per: str):
    return 0 if value is None else value.reshape(param_shape(value.shape, per))


def np_squeeze(y, a, b):
    """Undo ``np_promoted`` on a product."""
    if b.ndim == 1:
        y = y[..., 0]
    if a.ndim == 1:
        y = y[..., 0, :] if b.ndim > 1 else y[..., 0]
    return y


def zero_point_readers(azp, bzp):
    """``aval`` / ``bval`` for matmul_sum: the int32 value minus its zero point."""

    def reader(zp, per):
        def read(v, full):
            v = te.cast(v, "int32")
            return v if zp is None else v - te.cast(qparam_read(zp, per, full), "int32")
        return read

    return reader(azp, "row"), reader(bzp, "col")


@register
class MatMulInteger(OpDef):
    """``(A - a_zero_point) @ (B - b_zero_point)`` accumulated in int32."""

    name = "MatMulInteger"
    pattern = COMPLEX
    num_inputs = (2, 4)

    def infer(self, ctx):
        check_dtype(ctx, 0, QTYPES)
        check_dtype(ctx, 1, QTYPES, "input")
        a, b = ctx.type(0).shape, ctx.type(1).shape
        out = matmul_shape(ctx, a, b)
        full = full_out_shape(a, b)
        check_qparam(ctx, 2, full, "row", "a_zero_point", (ctx.type(0).dtype,))
        check_qparam(ctx, 3, full, "col", "b_zero_point", (ctx.type(1).dtype,))
        return [out_type(out, "int32")]

    def reference(self, ctx, a, b, azp=None, bzp=None):
        a2, b2 = np_promoted(a, b)
        aa = a2.astype(np.int64) - np_param(azp, "row")
        bb = b2.astype(np.int64) - np_param(bzp, "col")
        return [np_squeeze(np.matmul(aa, bb), a, b).astype(np.int32)]

    def compute(self, ctx, a, b, azp=None, bzp=None):
        return [matmul_sum(a, b, "int32", ctx.name or self.name,
                           *zero_point_readers(azp, bzp))]


@register
class QLinearMatMul(OpDef):
    """``y = saturate(round_half_even(acc * (a_scale * b_scale / y_scale)) + y_zero_point)``
    where ``acc = (a - a_zp) @ (b - b_zp)`` in int32; the scale ratio is computed in the
    scales' dtype and applied in float64 (like ONNX's reference)."""

    name = "QLinearMatMul"
    pattern = COMPLEX
    num_inputs = (8, 8)

    def infer(self, ctx):
        ad = check_dtype(ctx, 0, QTYPES)
        bd = check_dtype(ctx, 3, QTYPES, "input")
        a, b = ctx.type(0).shape, ctx.type(3).shape
        out = matmul_shape(ctx, a, b)
        full = full_out_shape(a, b)
        sd = check_dtype(ctx, 1, ("float32", "float16", "bfloat16"), "scale")
        check_qparam(ctx, 1, full, "row", "a_scale", (sd,))
        check_qparam(ctx, 2, full, "row", "a_zero_point", (ad,))
        check_qparam(ctx, 4, full, "col", "b_scale", (sd,))
        check_qparam(ctx, 5, full, "col", "b_zero_point", (bd,))
        for k, what in ((6, "y_scale"), (7, "y_zero_point")):
            if ctx.type(k).size != 1:
                raise ctx.error(f"{what} must be a scalar, got shape {list(ctx.type(k).shape)}")
        if ctx.type(6).dtype != sd:
            raise ctx.error(f"y_scale has dtype {ctx.type(6).dtype}; expected {sd}")
        yd = check_dtype(ctx, 7, QTYPES, "y_zero_point")
        return [out_type(out, yd)]

    def reference(self, ctx, a, a_s, azp, b, b_s, bzp, y_s, yzp):
        a2, b2 = np_promoted(a, b)
        aa = a2.astype(np.int64) - np_param(azp, "row")
        bb = b2.astype(np.int64) - np_param(bzp, "col")
        acc = np.matmul(aa, bb).astype(np.int32)
        mult = (np_param(a_s, "row") * np_param(b_s, "col") / y_s.reshape(())).astype(
            a_s.dtype)
        y = np_requantize(acc, mult, yzp.reshape(()).astype(np.float64), yzp.dtype)
        return [np_squeeze(y, a, b)]

    def compute(self, ctx, a, a_s, azp, b, b_s, bzp, y_s, yzp):
        name = ctx.name or self.name
        total = matmul_sum(a, b, "int32", f"{name}_sum", *zero_point_readers(azp, bzp))
        sd = a_s.dtype

        def out(*idx):
            full = full_index(idx, a.ndim, b.ndim)
            mult = qparam_read(a_s, "row", full) * qparam_read(b_s, "col", full) \
                / y_s[(0,) * y_s.ndim]
            return requantize(total[idx], te.cast(mult, sd), yzp[(0,) * yzp.ndim], yzp.dtype)

        return [te.compute(total.shape, out, name=name)]


# -- Einsum ----------------------------------------------------------------------------------
def parse_einsum(ctx, equation: str, shapes):
    """(input label lists, output labels, label sizes); ellipsis dimensions get the labels
    "0", "1", ... (right-aligned, broadcast like NumPy)."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ctx.error(f"equation {equation!r} has {len(terms)} operand terms but there are "
                        f"{len(shapes)} inputs")
    parsed, ell_rank = [], 0
    for term, shape in zip(terms, shapes):
        letters = term.replace("...", "")
        if not all(ch.isalpha() for ch in letters) or term.count("...") > 1 or \
                "." in term.replace("...", ""):
            raise ctx.error(f"bad term {term!r} in equation {equation!r}")
        e = len(shape) - len(letters)
        if e < 0 or (e > 0 and "..." not in term):
            raise ctx.error(f"term {term!r} does not match an input of rank {len(shape)}")
        ell_rank = max(ell_rank, e)
        parsed.append((term, e))
    ell = [str(d) for d in range(ell_rank)]
    inputs, sizes = [], {}
    for (term, e), shape in zip(parsed, shapes):
        head, _, tail = term.partition("...")
        labels = list(head) + (ell[ell_rank - e:] if "..." in term else []) + list(tail)
        for lab, size in zip(labels, shape):
            old = sizes.get(lab)
            if lab.isdigit():
                if old is None or old == 1:
                    sizes[lab] = size
                elif size not in (1, old):
                    raise ctx.error(f"ellipsis dimensions {list(shape)} do not broadcast")
            elif old is not None and old != size:
                raise ctx.error(f"label {lab!r} has sizes {old} and {size}")
            else:
                sizes[lab] = size
        inputs.append(labels)
    if arrow:
        if rhs.count("...") > 1 or not all(ch.isalpha() for ch in rhs.replace("...", "")):
            raise ctx.error(f"bad output term {rhs!r}")
        head, _, tail = rhs.partition("...")
        out = list(head) + (ell if "..." in rhs else []) + list(tail)
        if len(set(out)) != len(out) or any(lab not in sizes for lab in out):
            raise ctx.error(f"output term {rhs!r} repeats a label or names one no input has")
    else:
        counts = {}
        for labels in inputs:
            for lab in labels:
                counts[lab] = counts.get(lab, 0) + 1
        out = ell + sorted(lab for lab, c in counts.items() if c == 1 and not lab.isdigit())
    return inputs, out, sizes


@register
class Einsum(OpDef):
    name = "Einsum"
    pattern = COMPLEX
    num_inputs = (1, None)
    attrs = {"equation": ""}

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, FLOATS + dtypes.SIGNED_DTYPES + dtypes.UNSIGNED_DTYPES)
        if any(t.dtype != dtype for t in ctx.in_types):
            raise ctx.error("all inputs must have one dtype")
        _, out, sizes = parse_einsum(ctx, ctx.attrs["equation"],
                                     [t.shape for t in ctx.in_types])
        return [out_type([sizes[lab] for lab in out], dtype)]

    def reference(self, ctx, *arrays):
        acc = np_acc(arrays[0].dtype)
        eq = ctx.attrs["equation"].replace(" ", "")
        return [np.asarray(np.einsum(eq, *[a.astype(acc) for a in arrays])).astype(
            arrays[0].dtype)]

    def compute(self, ctx, *tensors):
        inputs, out, sizes = parse_einsum(ctx, ctx.attrs["equation"],
                                          [t.shape for t in tensors])
        dtype = tensors[0].dtype
        acc = accumulation_dtype(dtype)
        name = ctx.name or self.name
        summed = [lab for lab in sizes if lab not in out]
        empty = any(sizes[lab] == 0 for lab in summed)
        rvars = {lab: te.reduce_axis(sizes[lab], f"r_{lab}") for lab in summed if not empty}

        def body(*idx):
            env = dict(zip(out, idx))
            env.update(rvars)
            if empty:
                return te.const(0, acc)
            prod = None
            for t, labels in zip(tensors, inputs):
                read = t[tuple(0 if s == 1 and sizes[lab] != 1 else env[lab]
                               for lab, s in zip(labels, t.shape))]
                v = te.cast(read, acc)
                prod = v if prod is None else prod * v
            return te.sum(prod, axis=list(rvars.values())) if rvars else prod

        shape = tuple(sizes[lab] for lab in out)
        if not shape:
            total = te.compute((1,), lambda _: body(), name=f"{name}_sum")
            return [te.compute((), lambda: te.cast(total[0], dtype), name=name)]
        total = te.compute(shape, body, name=name if acc == dtype else f"{name}_sum")
        return [finish(total, dtype, name)]
