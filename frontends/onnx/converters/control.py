"""Control flow: If, Loop, Scan.

Bodies are converted to dlc Graphs by the attribute reader; the tensors of enclosing graphs
that a body reads become captured inputs (``dlc.ops.control.capture_outer``): trailing
inputs of the node and of the body. If and Loop keep their semantics from opset 1 on
(later versions only add types); Scan-8 has a batch axis and ``sequence_lens`` and maps to
dlc's BatchedScan, Scan-9 and later to Scan (opset 9 added the axes and directions
attributes; later versions only add types).
"""

from dlc.frontends.onnx.registry import converter
from dlc.ops.control import capture_outer


@converter("If", since=1)
def convert_if(cx, node):
    attrs = cx.attributes(node, "If")
    names, (then_b, else_b) = capture_outer(attrs["then_branch"], attrs["else_branch"])
    cx.emit("If", [node.input[0], *names], node.output,
            {"then_branch": then_b, "else_branch": else_b})


@converter("Loop", since=1)
def convert_loop(cx, node):
    attrs = cx.attributes(node, "Loop")
    names, (body,) = capture_outer(attrs["body"])
    inputs = list(node.input) + [""] * max(0, 2 - len(node.input))
    cx.emit("Loop", inputs + names, node.output, {"body": body, "num_captured": len(names)})


@converter("Scan", since=9)
def convert_scan(cx, node):
    attrs = cx.attributes(node, "Scan")
    names, (body,) = capture_outer(attrs.pop("body"))
    cx.emit("Scan", list(node.input) + names, node.output,
            {**attrs, "body": body, "num_captured": len(names)})


@converter("Scan", since=8)
def convert_scan_8(cx, node):
    attrs = cx.attributes(node, "BatchedScan")
    names, (body,) = capture_outer(attrs.pop("body"))
    cx.emit("BatchedScan", list(node.input) + names, node.output,
            {**attrs, "body": body, "num_captured": len(names)})
