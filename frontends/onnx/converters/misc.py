"""Operators without a family of their own: Det (opset 11; 22 adds bfloat16), Dropout and
ImageDecoder (opset 20; the formats it decodes are listed in dlc/ops/codec.py).

Dropout history: 1-6 select test mode with ``is_test`` (default 0, training); 7-11 are
identities at inference with a ``ratio`` attribute (the mask has X's type before 10, bool
from 10); 12 moves ``ratio`` and ``training_mode`` to inputs (today's op). Training-mode
dropout is random and not supported, unless its ratio is 0 (nothing is dropped).
"""

from dlc.errors import UnsupportedOpError
from dlc.frontends.onnx.registry import converter, passthrough

passthrough("Det", since=11)
passthrough("Dropout", since=12)
passthrough("ImageDecoder", since=20)


def _dropout_inference(cx, node, mask_like_input: bool) -> None:
    outputs = list(node.output) + [""] * (2 - len(node.output))
    mask = outputs[1]
    if mask and mask_like_input:  # the mask has X's dtype: 1 everywhere
        flag = cx.fresh(f"{mask}_bool")
        cx.emit("Dropout", [node.input[0]], [outputs[0], flag])
        cx.emit("CastLike", [flag, node.input[0]], [mask])
        return
    cx.emit("Dropout", [node.input[0]], outputs[:2] if mask else outputs[:1])


@converter("Dropout", since=1)
def dropout_v1(cx, node):
    attrs = cx.attributes(node)
    ratio = attrs.get("ratio", 0.5)
    if not attrs.get("is_test", 0) and ratio != 0:
        raise UnsupportedOpError(f"Dropout node {node.name!r} (opset {cx.opset}) is in "
                                 f"training mode (is_test=0) with ratio {ratio}, which draws "
                                 "random numbers; dlc compiles inference only (set is_test=1, "
                                 "or ratio 0)")
    _dropout_inference(cx, node, mask_like_input=True)


@converter("Dropout", since=7)
def dropout_v7(cx, node):
    _dropout_inference(cx, node, mask_like_input=True)


@converter("Dropout", since=10)
def dropout_v10(cx, node):
    _dropout_inference(cx, node, mask_like_input=False)
