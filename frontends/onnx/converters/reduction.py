"""Reductions, ArgMax/ArgMin and cumulative ops.

ReduceSum takes ``axes`` as an input from opset 13, the other ReduceXxx ops from opset 18;
before that ``axes`` was an attribute (and ``noop_with_empty_axes`` did not exist). Later
versions only widen the types (bool for ReduceMax/Min in 20; ReduceLogSum/LogSumExp drop
integers in 28), so one passthrough covers them.
"""

from __future__ import annotations

import numpy as np

from dlc.frontends.onnx.registry import converter, passthrough

#: op -> first opset with ``axes`` as an input
AXES_INPUT_SINCE = {
    "ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18, "ReduceProd": 18,
    "ReduceL1": 18, "ReduceL2": 18, "ReduceLogSum": 18, "ReduceLogSumExp": 18,
    "ReduceSumSquare": 18,
}


def _axes_attribute(op: str):
    """A converter for the versions with ``axes`` as an attribute (absent: all axes)."""

    def convert(cx, node):
        attrs = cx.attributes(node)
        axes = attrs.pop("axes", None)
        inputs = [node.input[0]]
        if axes is not None:
            inputs.append(cx.constant(np.array(axes, dtype=np.int64), "axes"))
        cx.emit(op, inputs, node.output, attrs)

    convert.__name__ = f"convert_{op}_axes_attribute"
    return convert


for _op, _since in AXES_INPUT_SINCE.items():
    converter(_op, since=1)(_axes_attribute(_op))
    passthrough(_op, since=_since)

# ArgMax/ArgMin: select_last_index (opset 12) defaults to the earlier behaviour.
passthrough("ArgMax", since=1)
passthrough("ArgMin", since=1)
passthrough("CumSum", since=11)
passthrough("CumProd", since=26)
