"""Shape operators: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Expand, Shape, Size,
ConstantOfShape, Range, EyeLike
(Identity is an elementwise op, in dlc.ops.elementwise).

Copies between shapes of the same size (Reshape, Flatten, Squeeze, Unsqueeze) read the
input through :func:`reshape_read`, which maps dimensions one to one where the two shapes
agree and goes through a flat offset only inside groups of dimensions that were merged
or split. The helpers at the top are shared with the other data-movement families.
"""

from __future__ import annotations

import math

import numpy as np

from dlc import dtypes, te
from dlc.expr import nodes as n
from dlc.ops.common import (
    broadcast_read,
    broadcast_shapes,
    normalize_axes,
    normalize_axis,
    out_type,
)
from dlc.ops.registry import ALL, INJECTIVE, OPAQUE, OpDef, check_dtype, register

INDEX_DTYPES = ("int32", "int64")


# -- helpers shared by shape, movement and indexing ops -----------------------------------
def int_values(ctx, index: int, what: str, allow_scalar: bool = False) -> list:
    """The compile-time value of integer input ``index`` as a list of Python ints."""
    value = ctx.value(index)
    if value.dtype.kind not in "iu":
        raise ctx.error(f"{what} must be an integer tensor, got {value.dtype}")
    if value.ndim > 1 or (value.ndim == 0 and not allow_scalar):
        raise ctx.error(f"{what} must be a 1-D tensor, got shape {list(value.shape)}")
    return [int(v) for v in value.reshape(-1)]


def scalar_value(ctx, index: int, what: str):
    """The single element of a compile-time input given as a scalar or a 1-element tensor."""
    value = ctx.value(index)
    if value.size != 1:
        raise ctx.error(f"{what} must have one element, got shape {list(value.shape)}")
    return value.reshape(-1)[0]


def first_element(t: te.Tensor) -> n.Expr:
    """The first element of a run-time tensor (a scalar or a 1-element tensor)."""
    return t[(0,) * t.ndim]


def ravel(index, shape) -> n.Expr:
    """Row-major flat offset of ``index`` in ``shape``."""
    flat = None
    for i, d in zip(index, shape):
        flat = n.as_expr(i) if flat is None else flat * d + i
    return flat if flat is not None else n.const(0)


def unravel(flat, shape) -> list:
    """Row-major index of the non-negative flat offset ``flat`` in ``shape``."""
    out = []
    for k in range(len(shape) - 1, -1, -1):
        d = shape[k]
        if d == 1:
            out.append(n.const(0))
            continue
        out.append(te.truncmod(flat, d) if k else flat)
        flat = te.truncdiv(flat, d)
    return out[::-1]


def reshape_read(x: te.Tensor, out_shape, index) -> n.Expr:
    """Read ``x`` at the element that has index ``index`` in ``x`` reshaped to ``out_shape``
    (same number of elements, none zero)."""
    in_shape = x.shape
    in_big = [k for k, d in enumerate(in_shape) if d != 1]
    out_big = [k for k, d in enumerate(out_shape) if d != 1]
    in_index = [n.const(0)] * len(in_shape)
    i = j = 0
    while i < len(in_big):
        gi, gj = [in_big[i]], [out_big[j]]
        pa, pb = in_shape[in_big[i]], out_shape[out_big[j]]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb:
                gi.append(in_big[i])
                pa *= in_shape[in_big[i]]
                i += 1
            else:
                gj.append(out_big[j])
                pb *= out_shape[out_big[j]]
                j += 1
        if len(gi) == 1 and len(gj) == 1:
            in_index[gi[0]] = index[gj[0]]
            continue
        flat = ravel([index[k] for k in gj], [out_shape[k] for k in gj])
        for k, e in zip(gi, unravel(flat, [in_shape[k] for k in gi])):
            in_index[k] = e
    return x[tuple(in_index)]


def copy_as(ctx, x: te.Tensor, shape) -> te.Tensor:
    """``x`` copied into ``shape`` (same number of elements), as one compute."""
    shape = tuple(shape)
    return te.compute(shape, lambda *i: reshape_read(x, shape, i), name=ctx.name or ctx.op)


def clamp_index(k: n.Expr, size: int) -> n.Expr:
    """A run-time index made non-negative (``k + size`` for negative ``k``) and clamped to
    ``[0, size)``, so that out-of-range indices (undefined by the spec) never read out of
    bounds."""
    k = te.cast(k, "int64")
    k = te.if_then_else(k < 0, k + size, k)
    return te.minimum(te.maximum(k, 0), size - 1)


class _Copy(OpDef):
    """An op whose output is its input's elements in row-major order, in a new shape."""

    pattern = INJECTIVE

    def reference(self, ctx, x, *rest):
        return [np.array(x, copy=True).reshape(ctx.out_types[0].shape)]

    def compute(self, ctx, x, *rest):
        return [copy_as(ctx, x, ctx.out_types[0].shape)]


# -- ops ----------------------------------------------------------------------------------
@register
class Reshape(_Copy):
    name = "Reshape"
    attrs = {"allowzero": 0}
    num_inputs = (2, 2)
    value_inputs = (1,)

    def infer(self, ctx):
        t = ctx.type(0)
        shape = int_values(ctx, 1, "shape")
        allowzero = ctx.attrs["allowzero"]
        if allowzero and 0 in shape and -1 in shape:
            raise ctx.error(f"shape {shape} has both 0 and -1, which allowzero=1 forbids")
        out, unknown = [], None
        for k, d in enumerate(shape):
            if d == -1:
                if unknown is not None:
                    raise ctx.error(f"shape {shape} has more than one -1")
                unknown = k
                out.append(1)
            elif d == 0 and not allowzero:
                if k >= t.ndim:
                    raise ctx.error(f"shape {shape} copies dimension {k} (a 0) but the input "
                                    f"has rank {t.ndim}")
                out.append(t.shape[k])
            elif d < 0:
                raise ctx.error(f"shape {shape} has a negative dimension {d}")
            else:
                out.append(d)
        known = math.prod(out)
        if unknown is not None:
            if known == 0 or t.size % known:
                raise ctx.error(f"cannot reshape {list(t.shape)} to {shape}: the -1 "
                                "dimension cannot be inferred")
            out[unknown] = t.size // known
        elif known != t.size:
            raise ctx.error(f"cannot reshape {list(t.shape)} ({t.size} elements) to {shape} "
                            f"({known} elements)")
        return [out_type(out, t.dtype)]


@register
class Flatten(_Copy):
    name = "Flatten"
    attrs = {"axis": 1}

    def infer(self, ctx):
        t = ctx.type(0)
        axis = ctx.attrs["axis"]
        if not -t.ndim <= axis <= t.ndim:
            raise ctx.error(f"axis={axis} is out of range for a tensor of rank {t.ndim}")
        axis = axis + t.ndim if axis < 0 else axis
        return [out_type((math.prod(t.shape[:axis]), math.prod(t.shape[axis:])), t.dtype)]


@register
class Squeeze(_Copy):
    name = "Squeeze"
    num_inputs = (1, 2)
    value_inputs = (1,)

    def infer(self, ctx):
        t = ctx.type(0)
        if ctx.has_input(1):
            axes = normalize_axes(ctx, int_values(ctx, 1, "axes"), t.ndim)
            for a in axes:
                if t.shape[a] != 1:
                    raise ctx.error(f"cannot squeeze axis {a} of shape {list(t.shape)}: its "
                                    "size is not 1")
        else:
            axes = [k for k, d in enumerate(t.shape) if d == 1]
        return [out_type([d for k, d in enumerate(t.shape) if k not in axes], t.dtype)]


@register
class Unsqueeze(_Copy):
    name = "Unsqueeze"
    num_inputs = (2, 2)
    value_inputs = (1,)

    def infer(self, ctx):
        t = ctx.type(0)
        values = int_values(ctx, 1, "axes", allow_scalar=True)
        rank = t.ndim + len(values)
        axes = normalize_axes(ctx, values, rank)
        dims = iter(t.shape)
        return [out_type([1 if k in axes else next(dims) for k in range(rank)], t.dtype)]


@register
class Transpose(OpDef):
    name = "Transpose"
    pattern = INJECTIVE
    attrs = {"perm": None}

    def _perm(self, ctx):
        rank = ctx.type(0).ndim
        perm = ctx.attrs["perm"]
        if perm is None:
            return list(range(rank))[::-1]
        perm = [int(p) for p in perm]
        if sorted(normalize_axis(ctx, p, rank, "perm") for p in perm) != list(range(rank)):
            raise ctx.error(f"perm {perm} is not a permutation of the {rank} axes")
        return [p + rank if p < 0 else p for p in perm]

    def infer(self, ctx):
        t = ctx.type(0)
        return [out_type([t.shape[p] for p in self._perm(ctx)], t.dtype)]

    def reference(self, ctx, x):
        return [np.transpose(x, self._perm(ctx))]

    def compute(self, ctx, x):
        perm = self._perm(ctx)

        def read(*i):
            src = [None] * len(perm)
            for k, p in enumerate(perm):
                src[p] = i[k]
            return x[tuple(src)]

        return [te.compute(ctx.out_types[0].shape, read, name=ctx.name or self.name)]


@register
class Expand(OpDef):
    name = "Expand"
    pattern = INJECTIVE
    num_inputs = (2, 2)
    value_inputs = (1,)

    def infer(self, ctx):
        t = ctx.type(0)
        shape = int_values(ctx, 1, "shape")
        if any(d < 0 for d in shape):
            raise ctx.error(f"shape {shape} has a negative dimension")
        return [out_type(broadcast_shapes(ctx, t.shape, shape), t.dtype)]

    def reference(self, ctx, x, shape):
        return [np.array(np.broadcast_to(x, ctx.out_types[0].shape))]

    def compute(self, ctx, x, shape):
        return [te.compute(ctx.out_types[0].shape, lambda *i: broadcast_read(x, i),
                           name=ctx.name or self.name)]


def _constant_compute(ctx, values) -> te.Tensor:
    """A 1-D compute holding the given Python ints (int64)."""
    def body(i):
        expr = n.const(values[-1], "int64")
        for k in range(len(values) - 2, -1, -1):
            expr = te.if_then_else(i == k, n.const(values[k], "int64"), expr)
        return expr

    return te.compute((len(values),), body, name=ctx.name or ctx.op)


@register
class Shape(OpDef):
    name = "Shape"
    pattern = OPAQUE
    reads_input_values = False
    attrs = {"start": 0, "end": None}

    def _dims(self, ctx):
        shape = ctx.type(0).shape
        rank = len(shape)
        start, end = ctx.attrs["start"], ctx.attrs["end"]
        end = rank if end is None else int(end)
        start = min(max(start + rank if start < 0 else start, 0), rank)
        end = min(max(end + rank if end < 0 else end, 0), rank)
        return list(shape[start:end])

    def infer(self, ctx):
        return [out_type((len(self._dims(ctx)),), "int64")]

    def reference(self, ctx, x):
        return [np.array(self._dims(ctx), dtype=np.int64)]

    def compute(self, ctx, x):
        return [_constant_compute(ctx, self._dims(ctx))]


@register
class Size(OpDef):
    name = "Size"
    pattern = OPAQUE
    reads_input_values = False

    def infer(self, ctx):
        ctx.type(0)
        return [out_type((), "int64")]

    def reference(self, ctx, x):
        return [np.array(ctx.type(0).size, dtype=np.int64)]

    def compute(self, ctx, x):
        size = ctx.type(0).size
        return [te.compute((), lambda: n.const(size, "int64"), name=ctx.name or self.name)]


@register
class ConstantOfShape(OpDef):
    name = "ConstantOfShape"
    pattern = OPAQUE
    attrs = {"value": None}
    value_inputs = (0,)

    def _value(self, ctx) -> np.ndarray:
        value = ctx.attrs["value"]
        if value is None:
            return np.zeros((), np.float32)
        value = np.asarray(value)
        if value.size != 1:
            raise ctx.error(f"value must have one element, got shape {list(value.shape)}")
        return value.reshape(())

    def infer(self, ctx):
        shape = int_values(ctx, 0, "the shape input")
        if any(d < 0 for d in shape):
            raise ctx.error(f"shape {shape} has a negative dimension")
        return [out_type(shape, dtypes.canonical(self._value(ctx).dtype))]

    def reference(self, ctx, shape):
        value = self._value(ctx)
        return [np.full(ctx.out_types[0].shape, value, dtype=value.dtype)]

    def compute(self, ctx, shape):
        out = ctx.out_types[0]
        value = n.const(self._value(ctx).item(), out.dtype)
        return [te.compute(out.shape, lambda *i: value, name=ctx.name or self.name)]


@register
class EyeLike(OpDef):
    name = "EyeLike"
    pattern = OPAQUE
    reads_input_values = False
    attrs = {"dtype": None, "k": 0}

    def infer(self, ctx):
        t = ctx.type(0)
        if t.ndim != 2:
            raise ctx.error(f"input must have rank 2, got shape {list(t.shape)}")
        dtype = ctx.attrs["dtype"]
        if dtype is None:
            dtype = t.dtype
        if not isinstance(dtype, str) or dtype not in ALL:
            raise ctx.error(f"dtype {dtype!r} is not supported; expected one of "
                            f"{', '.join(ALL)}")
        return [out_type(t.shape, dtype)]

    def reference(self, ctx, x):
        out = ctx.out_types[0]
        return [np.eye(*out.shape, k=ctx.attrs["k"], dtype=dtypes.to_numpy(out.dtype))]

    def compute(self, ctx, x):
        out = ctx.out_types[0]
        k = ctx.attrs["k"]
        one, zero = n.const(1, out.dtype), n.const(0, out.dtype)
        return [te.compute(out.shape, lambda i, j: te.if_then_else(j - i == k, one, zero),
                           name=ctx.name or self.name)]


@register
class Range(OpDef):
    """``start + i * delta`` for ``i < max(ceil((limit - start) / delta), 0)``, computed
    like numpy.arange (for float16/bfloat16, in the precision ``stash_type`` names: 1
    float32, 11 float64)."""

    name = "Range"
    pattern = OPAQUE
    attrs = {"stash_type": 1}
    num_inputs = (3, 3)
    value_inputs = (0, 1, 2)
    allowed = ("float16", "bfloat16", "float32", "float64", "int16", "int32", "int64")

    def _params(self, ctx):
        dtype = check_dtype(ctx, 0, self.allowed)
        names = ("start", "limit", "delta")
        for k in range(3):
            if ctx.type(k).dtype != dtype:
                raise ctx.error(f"{names[k]} has dtype {ctx.type(k).dtype}, start has {dtype}")
            if ctx.type(k).size != 1 or ctx.type(k).ndim > 1:
                raise ctx.error(f"{names[k]} must be a scalar, got shape "
                                f"{list(ctx.type(k).shape)}")
        start, limit, delta = (scalar_value(ctx, k, names[k]) for k in range(3))
        if delta == 0:
            raise ctx.error("delta must not be zero")
        compute_dtype = None
        if dtype in ("float16", "bfloat16"):
            stash = ctx.attrs["stash_type"]
            compute_dtype = {1: "float32", 11: "float64"}.get(stash)
            if compute_dtype is None:
                raise ctx.error(f"stash_type={stash} is not supported; expected 1 (float) or "
                                "11 (double)")
        return dtype, start, limit, delta, compute_dtype

    def infer(self, ctx):
        dtype, start, limit, delta, compute_dtype = self._params(ctx)
        if compute_dtype is not None:
            start = np.dtype(compute_dtype).type(start)
        count = math.ceil((limit.item() - start.item()) / delta.item())
        return [out_type((max(count, 0),), dtype)]

    def reference(self, ctx, start, limit, delta):
        dtype, start, limit, delta, compute_dtype = self._params(ctx)
        np_dtype = dtypes.to_numpy(dtype)
        if compute_dtype is not None:
            values = np.arange(np.dtype(compute_dtype).type(start).item(), float(limit),
                               float(delta), dtype=compute_dtype)
        else:
            values = np.arange(start.item(), limit.item(), delta.item())
        return [values.astype(np_dtype)]

    def compute(self, ctx, *unused):
        # numpy.arange stores start and start + delta, then fills element i >= 2 with
        # start + i * (a[1] - a[0]) in the working precision; mirrored here.
        dtype, start, limit, delta, compute_dtype = self._params(ctx)
        if dtypes.is_int(dtype):
            work, a0, a1 = "int64", int(start), int(start) + int(delta)
        else:
            work = compute_dtype or "float64"
            w = np.dtype(work).type
            a0 = w(np.dtype(work).type(start).item() if compute_dtype else start.item())
            a1 = w(float(a0) + float(delta)) if compute_dtype else \
                w(start.item() + delta.item())
        step = a1 - a0
        a0c, a1c, stepc = (n.const(v.item() if hasattr(v, "item") else v, work)
                           for v in (a0, a1, step))

        def body(i):
            value = a0c + te.cast(i, work) * stepc
            return te.cast(te.if_then_else(i == 1, a1c, value), dtype)

        return [te.compute(ctx.out_types[0].shape, body, name=ctx.name or self.name)]

