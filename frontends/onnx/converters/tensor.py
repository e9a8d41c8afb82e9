"""Shape, data movement, indexing and data-dependent operators.

The dlc ops follow the newest ONNX versions; older versions that took attributes where
the newer ones take inputs (Reshape-1 shape, Squeeze/Unsqueeze-1 axes, Split-2 split,
Slice-1, Pad-2, TopK-1 k) are converted by turning the attribute into a constant.
"""

from __future__ import annotations

import numpy as np

from dlc.errors import ModelError, UnsupportedOpError
from dlc.frontends.onnx.registry import converter, passthrough
from dlc.frontends.onnx.types import dlc_dtype

for _op, _since in (("Flatten", 1), ("Transpose", 1), ("Expand", 8), ("Shape", 1),
                    ("Size", 1), ("ConstantOfShape", 9), ("Range", 11), ("Concat", 4),
                    ("Tile", 6), ("DepthToSpace", 1), ("SpaceToDepth", 1), ("Trilu", 14),
                    ("ReverseSequence", 10), ("Gather", 1), ("GatherElements", 11),
                    ("GatherND", 11), ("ScatterElements", 11), ("ScatterND", 11),
                    ("TensorScatter", 24), ("OneHot", 11), ("TopK", 10), ("NonZero", 9),
                    ("Unique", 11), ("Compress", 9), ("NonMaxSuppression", 10),
                    ("Reshape", 5), ("Squeeze", 13), ("Unsqueeze", 13), ("Slice", 10),
                    ("Pad", 11)):
    passthrough(_op, since=_since)


def _ints(cx, values, base: str) -> str:
    return cx.constant(np.array(values, dtype=np.int64).reshape(-1), base)


def _inputs(node, count: int) -> list:
    return list(node.input) + [""] * (count - len(node.input))


@converter("Reshape", since=1)
def reshape_v1(cx, node):
    attrs = cx.attributes(node)
    if "shape" not in attrs:
        raise ModelError(f"Reshape node {node.name!r} (opset {cx.opset}) has no shape "
                         "attribute")
    cx.emit("Reshape", [node.input[0], _ints(cx, attrs["shape"], "shape")], node.output)


@converter("Squeeze", since=1)
def squeeze_v1(cx, node):
    attrs = cx.attributes(node)
    axes = _ints(cx, attrs["axes"], "axes") if attrs.get("axes") else ""  # []: all
    cx.emit("Squeeze", [node.input[0], axes], node.output)


@converter("Unsqueeze", since=1)
def unsqueeze_v1(cx, node):
    attrs = cx.attributes(node)
    cx.emit("Unsqueeze", [node.input[0], _ints(cx, attrs.get("axes", []), "axes")],
            node.output)


def _even_split(cx, node, axis: int) -> dict:
    """Before opset 18, a Split without sizes makes equal parts, one per output."""
    count = len(node.output)
    t = cx.type_of(node.input[0])
    if t is not None:
        a = axis + t.ndim if axis < 0 else axis
        if 0 <= a < t.ndim and t.shape[a] % count:
            raise ModelError(f"Split node {node.name!r}: axis {axis} of size {t.shape[a]} "
                             f"cannot be split into {count} equal parts")
    return {"axis": axis, "num_outputs": count}


def _check_count(cx, node, count) -> None:
    if count is not None and count != len(node.output):
        raise ModelError(f"Split node {node.name!r} makes {count} parts but has "
                         f"{len(node.output)} outputs")


@converter("Split", since=2)
def split_v2(cx, node):
    attrs = cx.attributes(node)
    axis = attrs.get("axis", 0)
    if attrs.get("split"):
        _check_count(cx, node, len(attrs["split"]))
        cx.emit("Split", [node.input[0], _ints(cx, attrs["split"], "split")], node.output,
                {"axis": axis})
    else:
        cx.emit("Split", [node.input[0]], node.output, _even_split(cx, node, axis))


@converter("Split", since=13)
def split_v13(cx, node):
    attrs = cx.attributes(node)
    axis = attrs.get("axis", 0)
    data, split = _inputs(node, 2)[:2]
    if split:
        _check_count(cx, node, _known_length(cx, split))
        cx.emit("Split", [data, split], node.output, {"axis": axis})
    else:
        cx.emit("Split", [data], node.output, _even_split(cx, node, axis))


@converter("Split", since=18)
def split_v18(cx, node):
    attrs = cx.attributes(node, "Split")
    data, split = _inputs(node, 2)[:2]
    if not split and attrs.get("num_outputs") is None:
        attrs["num_outputs"] = len(node.output)  # as the ONNX reference does
    _check_count(cx, node, _known_length(cx, split) if split else attrs["num_outputs"])
    cx.emit("Split", [data, split] if split else [data], node.output, attrs)


def _known_length(cx, name: str):
    value = cx.graph.constants.get(name)
    return value.size if value is not None else None


@converter("Slice", since=1)
def slice_v1(cx, node):
    attrs = cx.attributes(node)
    if "starts" not in attrs or "ends" not in attrs:
        raise ModelError(f"Slice node {node.name!r} (opset {cx.opset}) needs the starts and "
                         "ends attributes")
    axes = _ints(cx, attrs["axes"], "axes") if attrs.get("axes") else ""
    cx.emit("Slice", [node.input[0], _ints(cx, attrs["starts"], "starts"),
                      _ints(cx, attrs["ends"], "ends"), axes], node.output)


@converter("Pad", since=2)
def pad_v2(cx, node):
    attrs = cx.attributes(node)
    if "pads" not in attrs:
        raise ModelError(f"Pad node {node.name!r} (opset {cx.opset}) has no pads attribute")
    value = ""
    if attrs.get("mode", "constant") == "constant" and attrs.get("value", 0.0) != 0.0:
        t = cx.type_of(node.input[0])
        if t is None:
            raise UnsupportedOpError(f"Pad node {node.name!r}: the dtype of its input is not "
                                     "known when the model is imported, so its pad value "
                                     "cannot be converted")
        from dlc import dtypes

        value = cx.constant(np.array(attrs["value"]).astype(dtypes.to_numpy(t.dtype)), "value")
    cx.emit("Pad", [node.input[0], _ints(cx, attrs["pads"], "pads"), value], node.output,
            {"mode": attrs.get("mode", "constant")})


@converter("TopK", since=1)
def topk_v1(cx, node):
    attrs = cx.attributes(node)
    if "k" not in attrs:
        raise ModelError(f"TopK node {node.name!r} (opset {cx.opset}) has no k attribute")
    cx.emit("TopK", [node.input[0], _ints(cx, [attrs["k"]], "k")], node.output,
            {"axis": attrs.get("axis", -1)})


@converter("EyeLike", since=9)
def eyelike_v9(cx, node):
    attrs = cx.attributes(node, "EyeLike")
    if attrs.get("dtype") is not None:
        attrs["dtype"] = dlc_dtype(attrs["dtype"], f"EyeLike node {node.name!r}")
    cx.emit("EyeLike", node.input, node.output, attrs)


@converter("Scatter", since=9)
def scatter_v9(cx, node):
    """Scatter (deprecated) is ScatterElements without a reduction."""
    cx.emit("ScatterElements", node.input, node.output, cx.attributes(node, "ScatterElements"))


@converter("OneHot", since=9)
def onehot_v9(cx, node):
    """Before opset 11 a negative index was out of range (all off_value); since then it
    counts from the end. Negative indices are replaced by one that matches nothing."""
    from dlc import dtypes

    indices, depth, values = _inputs(node, 3)[:3]
    attrs = cx.attributes(node, "OneHot")
    t = cx.type_of(indices)
    if t is None:
        raise UnsupportedOpError(f"OneHot node {node.name!r} (opset {cx.opset}): the dtype of "
                                 "its indices is not known when the model is imported")
    if not dtypes.is_unsigned_int(t.dtype):
        ones = (1,) * t.ndim  # constants of the indices' rank broadcast without changing it
        if dtypes.is_float(t.dtype):
            never = cx.constant(np.full(ones, -np.inf, dtypes.to_numpy(t.dtype)), "never")
        else:
            wide = cx.fresh("indices")
            cx.emit("Cast", [indices], [wide], {"to": "int64"})
            indices = wide
            never = cx.constant(np.full(ones, np.iinfo(np.int64).min, np.int64), "never")
        zero = cx.constant(np.zeros(ones, dtypes.to_numpy(cx.type_of(indices).dtype)), "zero")
        negative, fixed = cx.fresh("negative"), cx.fresh("indices")
        cx.emit("Less", [indices, zero], [negative])
        cx.emit("Where", [negative, never, indices], [fixed])
        indices = fixed
    cx.emit("OneHot", [indices, depth, values], node.output, attrs)
