"""Recurrent operators: RNN, GRU, LSTM.

Opset history: 1 has ``output_sequence`` (whether Y is wanted; dlc computes the outputs
the node names, so it is dropped); GRU 1 spells its default direction "foward"; GRU 3 adds
``linear_before_reset``; 7 drops ``output_sequence``; 14 adds ``layout``; 22 adds bfloat16.
Attributes missing in older versions take their later defaults.
"""

from dlc.frontends.onnx.registry import converter, passthrough

for _op in ("RNN", "GRU", "LSTM"):
    passthrough(_op, since=7)


def _opset1(op):
    def convert(cx, node):
        attrs = cx.attributes(node)
        attrs.pop("output_sequence", None)
        if attrs.get("direction") == "foward":  # GRU-1's default, a typo in the spec
            attrs["direction"] = "forward"
        cx.emit(op, node.input, node.output, attrs)

    convert.__name__ = f"convert_{op}_1"
    converter(op, since=1)(convert)


for _op in ("RNN", "GRU", "LSTM"):
    _opset1(_op)
