"""Elementwise operators with NumPy broadcasting: arithmetic and activations."""

from __future__ import annotations

import numpy as np

from dlc import te
from dlc.ops.common import broadcast_read, broadcast_shapes, out_type, same_dtype
from dlc.ops.registry import BROADCAST, ELEMWISE, FLOATS, NUMERIC, OpDef, check_dtype, register


class Binary(OpDef):
    """``out = f(a, b)`` with broadcasting; subclasses set np_fn / te_fn / dtypes."""

    pattern = BROADCAST
    num_inputs = (2, 2)
    allowed = NUMERIC

    def infer(self, ctx):
        dtype = same_dtype(ctx)
        check_dtype(ctx, 0, self.allowed)
        shape = broadcast_shapes(ctx, ctx.type(0).shape, ctx.type(1).shape)
        return [out_type(shape, self.result_dtype(dtype))]

    def result_dtype(self, dtype):
        return dtype

    def reference(self, ctx, a, b):
        with np.errstate(all="ignore"):
            return [np.asarray(self.np_fn(a, b)).astype(ctx.out_types[0].dtype)]

    def compute(self, ctx, a, b):
        out = ctx.out_types[0]
        return [te.compute(out.shape, lambda *i: self.te_fn(broadcast_read(a, i),
                                                            broadcast_read(b, i)),
                           name=ctx.name or self.name)]


@register
class Add(Binary):
    name = "Add"
    np_fn = staticmethod(np.add)
    te_fn = staticmethod(lambda a, b: a + b)


@register
class Sub(Binary):
    name = "Sub"
    np_fn = staticmethod(np.subtract)
    te_fn = staticmethod(lambda a, b: a - b)


@register
class Mul(Binary):
    name = "Mul"
    np_fn = staticmethod(np.multiply)
    te_fn = staticmethod(lambda a, b: a * b)


class Unary(OpDef):
    pattern = ELEMWISE
    allowed = FLOATS

    def infer(self, ctx):
        check_dtype(ctx, 0, self.allowed)
        return [ctx.type(0)]

    def reference(self, ctx, x):
        with np.errstate(all="ignore"):
            return [np.asarray(self.np_fn(x)).astype(x.dtype)]

    def compute(self, ctx, x):
        return [te.compute(x.shape, lambda *i: self.te_fn(x[i]), name=ctx.name or self.name)]


@register
class Relu(Unary):
    name = "Relu"
    allowed = NUMERIC
    np_fn = staticmethod(lambda x: np.maximum(x, 0))
    te_fn = staticmethod(lambda x: te.maximum(x, 0))


@register
class Exp(Unary):
    name = "Exp"
    np_fn = staticmethod(np.exp)
    te_fn = staticmethod(te.exp)
