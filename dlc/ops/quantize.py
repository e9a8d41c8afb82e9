"""Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear.

Scales and zero points have one of three granularities (as in ONNX):

* per tensor: a scalar (or a one-element 1-D tensor);
* per axis: a 1-D tensor as long as ``x.shape[axis]``;
* blocked (``block_size > 0``): ``x``'s shape with ``ceil(D / block_size)`` at ``axis``;
  element ``x[..., i, ...]`` uses ``scale[..., i // block_size, ...]``.

Quantized dtypes are the integers int8, uint8, int16, uint16, int4, uint4, int2, uint2
(round half to even, add the zero point, saturate) and the small floats float8_e4m3fn,
float8_e4m3fnuz, float8_e5m2, float8_e5m2fnuz, float4_e2m1fn, float6_e2m3fn,
float6_e3m2fn (``x / scale + zero_point`` in float32, then converted as Cast does, with
``saturate`` for the float8 types); DequantizeLinear also reads int32. Scales may be
float8_e8m0fnu (powers of two), read as float32.
"""

from __future__ import annotations

import numpy as np

from dlc import te
from dlc.ops import small_floats as sf
from dlc.ops.common import normalize_axis, np_dtype, out_type
from dlc.ops.registry import ELEMWISE, OPAQUE, OpDef, check_dtype, register

#: Saturation range of each quantized integer dtype.
RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
          "uint16": (0, 65535), **{name: sf.int_range(name) for name in sf.SMALL_INTS}}
QUANT_FLOATS = ("float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2", "float8_e5m2fnuz",
                "float4_e2m1fn", "float6_e2m3fn", "float6_e3m2fn")
QUANT_DTYPES = tuple(RANGES) + QUANT_FLOATS
FLOAT_DTYPES = ("float32", "float16", "bfloat16")
SCALE_DTYPES = FLOAT_DTYPES + (sf.E8M0,)


def granularity(ctx, x_shape, param_index: int, what: str):
    """("tensor", None) | ("axis", axis) | ("block", axis): how input ``param_index``
    (a scale or zero point) maps onto the elements of ``x``; raises on bad shapes."""
    p_shape = ctx.type(param_index).shape
    block = int(ctx.attrs["block_size"]) if "block_size" in ctx.attrs else 0
    rank = len(x_shape)
    if block < 0:
        raise ctx.error(f"block_size must be >= 0, got {block}")
    if block == 0:
        if len(p_shape) == 0 or (len(p_shape) == 1 and p_shape[0] == 1):
            return "tensor", None
        if len(p_shape) != 1:
            raise ctx.error(f"{what} has shape {list(p_shape)}: without block_size it must be "
                            "a scalar (per tensor) or 1-D (per axis)")
        axis = normalize_axis(ctx, int(ctx.attrs["axis"]), rank)
        if p_shape[0] != x_shape[axis]:
            raise ctx.error(f"{what} has {p_shape[0]} elements but x has {x_shape[axis]} along "
                            f"axis {axis} (per-axis quantization)")
        return "axis", axis
    axis = normalize_axis(ctx, int(ctx.attrs["axis"]), rank)
    want = list(x_shape)
    want[axis] = -(-x_shape[axis] // block)
    if list(p_shape) != want:
        raise ctx.error(f"{what} has shape {list(p_shape)}; blocked quantization of x "
                        f"{list(x_shape)} with axis={axis}, block_size={block} needs {want}")
    return "block", axis


def read_param(param: te.Tensor, mode, block: int, index: tuple):
    """The scale / zero point that applies to ``x[index]``."""
    kind, axis = mode
    if kind == "tensor":
        return param[(0,) * param.ndim]
    if kind == "axis":
        return param[index[axis]]
    idx = list(index)
    idx[axis] = index[axis] // block
    return param[tuple(idx)]


def expand_param(value: np.ndarray, mode, block: int, x_shape) -> np.ndarray:
    """NumPy: a scale / zero point broadcast (or repeated) to ``x_shape``."""
    kind, axis = mode
    if kind == "tensor":
        return value.reshape(())
    if kind == "axis":
        shape = [1] * len(x_shape)
        shape[axis] = value.size
        return value.reshape(shape)
    return np.repeat(value, block, axis=axis).take(range(x_shape[axis]), axis=axis)


def _is_single(shape) -> bool:
    """A scalar or a one-element 1-D tensor (both mean per tensor)."""
    return len(shape) == 0 or tuple(shape) == (1,)


def _check_zero_point(ctx, scale_index: int, zp_index: int, allowed) -> str | None:
    if not ctx.has_input(zp_index):
        return None
    dtype = check_dtype(ctx, zp_index, allowed, "zero point (input")
    zp_shape, scale_shape = ctx.type(zp_index).shape, ctx.type(scale_index).shape
    if zp_shape != scale_shape and not (_is_single(zp_shape) and _is_single(scale_shape)):
        raise ctx.error(f"the zero point has shape {list(ctx.type(zp_index).shape)} but the "
                        f"scale has shape {list(ctx.type(scale_index).shape)}; they must match")
    return dtype


@register
class QuantizeLinear(OpDef):
    """``y = saturate(round_half_even(x / y_scale) + y_zero_point)`` (small floats:
    ``x / y_scale + y_zero_point`` in float32, rounded once to the output dtype). The
    division is done in ``precision`` if given, else in the scale's dtype (float32 for
    float8_e8m0fnu scales); the output dtype is the zero point's, else ``output_dtype``,
    else uint8."""

    name = "QuantizeLinear"
    pattern = ELEMWISE
    attrs = {"axis": 1, "saturate": 1, "block_size": 0, "output_dtype": "", "precision": ""}
    num_inputs = (2, 3)

    def infer(self, ctx):
        check_dtype(ctx, 0, FLOAT_DTYPES + ("int32",))
        check_dtype(ctx, 1, SCALE_DTYPES)
        zp = _check_zero_point(ctx, 1, 2, QUANT_DTYPES)
        wanted = ctx.attrs["output_dtype"]
        if wanted and wanted not in QUANT_DTYPES:
            raise ctx.error(f"output_dtype {wanted} is not supported; supported: "
                            f"{', '.join(QUANT_DTYPES)}")
        if zp and wanted and zp != wanted:
            raise ctx.error(f"output_dtype is {wanted} but the zero point has dtype {zp}")
        precision = ctx.attrs["precision"]
        if precision and precision not in FLOAT_DTYPES:
            raise ctx.error(f"precision {precision} is not supported; supported: "
                            f"{', '.join(FLOAT_DTYPES)}")
        if ctx.attrs["saturate"] not in (0, 1):
            raise ctx.error(f"saturate must be 0 or 1, got {ctx.attrs['saturate']}")
        shape = ctx.type(0).shape
        granularity(ctx, shape, 1, "y_scale")
        return [out_type(shape, zp or wanted or "uint8")]

    @staticmethod
    def _precision(ctx) -> str:
        scale = ctx.type(1).dtype
        return ctx.attrs["precision"] or ("float32" if scale == sf.E8M0 else scale)

    def reference(self, ctx, x, scale, zp=None):
        out = ctx.out_types[0].dtype
        mode = granularity(ctx, x.shape, 1, "y_scale")
        block = ctx.attrs["block_size"]
        prec = np_dtype(self._precision(ctx))
        scale = expand_param(_np_float(scale), mode, block, x.shape)
        q = x.astype(prec) / scale.astype(prec)
        if out in QUANT_FLOATS:
            q = q.astype(np.float32)
            if zp is not None:
                q = q + expand_param(sf.decode_array(zp), mode, block, x.shape)
            return [sf.convert_array(q, out, bool(ctx.attrs["saturate"]))]
        q = np.rint(q).astype(np.float64)
        if zp is not None:
            q = q + expand_param(sf.convert_array(zp, "int32"), mode, block, x.shape)
        lo, hi = RANGES[out]
        q = np.where(np.isnan(q), lo, np.clip(q, lo, hi))
        return [sf.convert_array(q.astype(np.int32), out)]

    def compute(self, ctx, x, scale, zp=None):
        out = ctx.out_types[0]
        mode = granularity(ctx, x.shape, 1, "y_scale")
        block = ctx.attrs["block_size"]
        prec = self._precision(ctx)
        saturate = bool(ctx.attrs["saturate"])

        def body(*i):
            s = _te_float(read_param(scale, mode, block, i))
            q = te.cast(x[i], prec) / te.cast(s, prec)
            if out.dtype in QUANT_FLOATS:
                q = te.cast(q, "float32")
                if zp is not None:
                    q = q + sf.to_float32_expr(read_param(zp, mode, block, i))
                return sf.convert_expr(q, out.dtype, saturate)
            q = te.cast(te.round(q), "float64")
            if zp is not None:
                q = q + te.cast(sf.convert_expr(read_param(zp, mode, block, i), "int32"),
                                "float64")
            lo, hi = RANGES[out.dtype]
            q = te.if_then_else(te.isnan(q), te.const(float(lo), "float64"),
                                te.minimum(te.maximum(q, float(lo)), float(hi)))
            return sf.convert_expr(te.cast(q, "int32"), out.dtype)

        return [te.compute(out.shape, body, name=ctx.name or self.name)]


@register
class DequantizeLinear(OpDef):
    """``y = (x - x_zero_point) * x_scale``, in the dtype ``output_dtype`` (default: the
    scale's dtype; it must be given for float8_e8m0fnu scales). The product is formed in
    float32 (float64 for int32 inputs) and rounded once to the output dtype; small-float
    inputs and zero points are read exactly as float32."""

    name = "DequantizeLinear"
    pattern = ELEMWISE
    attrs = {"axis": 1, "block_size": 0, "output_dtype": ""}
    num_inputs = (2, 3)

    def infer(self, ctx):
        x_dtype = check_dtype(ctx, 0, QUANT_DTYPES + ("int32",))
        scale = check_dtype(ctx, 1, SCALE_DTYPES)
        zp = _check_zero_point(ctx, 1, 2, QUANT_DTYPES + ("int32",))
        if zp and zp != x_dtype:
            raise ctx.error(f"the zero point has dtype {zp} but x has dtype {x_dtype}; they "
                            "must match")
        wanted = ctx.attrs["output_dtype"]
        if wanted and wanted not in FLOAT_DTYPES:
            raise ctx.error(f"output_dtype {wanted} is not supported; supported: "
                            f"{', '.join(FLOAT_DTYPES)}")
        if not wanted and scale == sf.E8M0:
            raise ctx.error(f"the scale is {sf.E8M0}, which cannot hold the result: set "
                            f"output_dtype to one of {', '.join(FLOAT_DTYPES)}")
        shape = ctx.type(0).shape
        granularity(ctx, shape, 1, "x_scale")
        return [out_type(shape, wanted or scale)]

    @staticmethod
    def _work_dtype(ctx) -> str:
        return "float64" if ctx.type(0).dtype == "int32" else "float32"

    def reference(self, ctx, x, scale, zp=None):
        mode = granularity(ctx, x.shape, 1, "x_scale")
        block = ctx.attrs["block_size"]
        work = np_dtype(self._work_dtype(ctx))
        if x.dtype.name in QUANT_FLOATS:
            d = sf.decode_array(x)
            if zp is not None:
                d = d - expand_param(sf.decode_array(zp), mode, block, x.shape)
        else:
            d = sf.convert_array(x, "int64")
            if zp is not None:
                d = d - expand_param(sf.convert_array(zp, "int64"), mode, block, x.shape)
        y = d.astype(work) * expand_param(_np_float(scale), mode, block, x.shape).astype(work)
        return [y.astype(np_dtype(ctx.out_types[0].dtype))]

    def compute(self, ctx, x, scale, zp=None):
        out = ctx.out_types[0]
        mode = granularity(ctx, x.shape, 1, "x_scale")
        block = ctx.attrs["block_size"]
        work = self._work_dtype(ctx)
        is_float = x.dtype in QUANT_FLOATS
        wide = "float32" if is_float else "int64" if x.dtype == "int32" else "int32"

        def body(*i):
            d = sf.convert_expr(x[i], wide)
            if zp is not None:
                d = d - sf.convert_expr(read_param(zp, mode, block, i), wide)
            y = te.cast(d, work) * te.cast(_te_float(read_param(scale, mode, block, i)), work)
            return te.cast(y, out.dtype)

        return [te.compute(out.shape, body, name=ctx.name or self.name)]


def _np_float(scale: np.ndarray) -> np.ndarray:
    """A scale as NumPy floats (float8_e8m0fnu read as float32)."""
    return sf.decode_array(scale) if scale.dtype.name == sf.E8M0 else scale


def _te_float(scale):
    return sf.to_float32_expr(scale) if scale.dtype == sf.E8M0 else scale


@register
class DynamicQuantizeLinear(OpDef):
    """uint8 quantization of float32 ``x`` with a scale and zero point computed from the
    range of ``x`` (widened to include 0): outputs ``y, y_scale, y_zero_point``."""

    name = "DynamicQuantizeLinear"
    pattern = OPAQUE
    num_outputs = (3, 3)

    def infer(self, ctx):
        check_dtype(ctx, 0, ("float32",))
        shape = ctx.type(0).shape
        return [out_type(shape, "uint8"), out_type((), "float32"), out_type((), "uint8")]

    def reference(self, ctx, x):
        f32 = np.float32
        hi = np.maximum(f32(0), np.max(x)) if x.size else f32(0)
        lo = np.minimum(f32(0), np.min(x)) if x.size else f32(0)
        scale = (f32(1.0) if hi == lo else f32(hi - lo)) / f32(255)
        zp = np.rint(np.clip(f32(0) - lo / scale, f32(0), f32(255)))
        y = np.clip(np.rint(x / scale) + zp, 0, 255)
        return [_to_uint8(y), np.array(scale, f32), _to_uint8(np.asarray(zp))]

    def compute(self, ctx, x):
        name = ctx.name or self.name
        axes = [te.reduce_axis(d, f"k{k}") for k, d in enumerate(x.shape)]
        if axes:
            hi_t = te.compute((), lambda: te.max(x[tuple(axes)], axis=axes), name=name + "_max")
            axes = [te.reduce_axis(d, f"k{k}") for k, d in enumerate(x.shape)]
            lo_t = te.compute((), lambda: te.min(x[tuple(axes)], axis=axes), name=name + "_min")
            hi = te.maximum(hi_t[()], 0.0)
            lo = te.minimum(lo_t[()], 0.0)
        else:
            hi, lo = te.maximum(x[()], 0.0), te.minimum(x[()], 0.0)
        scale = te.compute((), lambda: te.if_then_else(hi == lo, te.const(1.0), hi - lo)
                           / 255.0, name=name + "_scale")
        zp_f = te.compute((), lambda: te.round(te.minimum(te.maximum(
            0.0 - lo / scale[()], 0.0), 255.0)), name=name + "_zpf")

        def quantize(*i):
            q = te.round(x[i] / scale[()]) + zp_f[()]
            return _cast_uint8(te.minimum(te.maximum(q, 0.0), 255.0))

        y = te.compute(x.shape, quantize, name=name + "_y")
        zp = te.compute((), lambda: _cast_uint8(zp_f[()]), name=name + "_zp")
        return [y, scale, zp]


def _cast_uint8(value):
    """float32 in [0, 255] or NaN -> uint8 (NaN becomes 0)."""
    return te.cast(te.if_then_else(te.isnan(value), te.const(0.0), value), "uint8")


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(values), 0, values).astype(np.uint8)

