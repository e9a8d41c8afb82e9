"""Quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear.

Opset history: 10 per-tensor only; 13 ``axis`` (per-axis); 19 ``saturate`` and float8
types; 21 ``block_size``, ``output_dtype`` (QuantizeLinear), 16-bit and 4-bit types; 23
``output_dtype`` (DequantizeLinear), ``precision`` (QuantizeLinear), float4; 24
float8e8m0 scales; 25 2-bit types; 28 float6 types. Missing attributes take their spec
defaults, so one converter serves every version; the data-type attributes are mapped to
dlc dtype names.
"""

from dlc.frontends.onnx.registry import converter, passthrough
from dlc.frontends.onnx.types import dlc_dtype


def _dtype_attrs(attrs: dict, node, names) -> dict:
    for name in names:
        value = int(attrs.get(name, 0) or 0)
        attrs[name] = dlc_dtype(value, f"attribute {name} of {node.op_type} node "
                                       f"{node.name!r}") if value else ""
    return attrs


@converter("QuantizeLinear", since=10)
def quantize_linear(cx, node):
    attrs = _dtype_attrs(cx.attributes(node, "QuantizeLinear"), node,
                         ("output_dtype", "precision"))
    cx.emit("QuantizeLinear", node.input, node.output, attrs)


@converter("DequantizeLinear", since=10)
def dequantize_linear(cx, node):
    attrs = _dtype_attrs(cx.attributes(node, "DequantizeLinear"), node, ("output_dtype",))
    cx.emit("DequantizeLinear", node.input, node.output, attrs)


passthrough("DynamicQuantizeLinear", since=11)
