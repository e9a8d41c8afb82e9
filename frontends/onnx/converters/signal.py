"""Signal processing: DFT, STFT, window functions, MelWeightMatrix (all since opset 17).

DFT changed in opset 20: ``axis`` moved from an attribute (default 1) to an optional
input (default -2).
"""

import numpy as np

from dlc.frontends.onnx.registry import converter, passthrough
from dlc.frontends.onnx.types import dlc_dtype

passthrough("DFT", since=20)
passthrough("STFT", since=17)


@converter("DFT", since=17)
def dft_v17(cx, node):
    attrs = cx.attributes(node)
    axis = cx.constant(np.array(int(attrs.pop("axis", 1)), np.int64), "dft_axis")
    inputs = list(node.input) + [""] * (2 - len(node.input))
    cx.emit("DFT", inputs[:2] + [axis], node.output,
            {k: v for k, v in attrs.items() if k in ("inverse", "onesided")})


def _with_dtype(op):
    def convert(cx, node):
        attrs = cx.attributes(node, op)
        attrs["output_datatype"] = dlc_dtype(int(attrs.get("output_datatype", 1)),
                                             f"output_datatype of {op} node {node.name!r}")
        cx.emit(op, node.input, node.output, attrs)

    convert.__name__ = f"convert_{op}"
    converter(op, since=17)(convert)


for _op in ("HannWindow", "HammingWindow", "BlackmanWindow", "MelWeightMatrix"):
    _with_dtype(_op)
