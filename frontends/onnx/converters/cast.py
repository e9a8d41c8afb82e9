"""Casts between dtypes, Identity, and Constant nodes (which become graph constants)."""

from __future__ import annotations

import numpy as np

from dlc.errors import ModelError, UnsupportedOpError
from dlc.frontends.onnx.registry import converter, passthrough
from dlc.frontends.onnx.types import dlc_dtype
from dlc.graph.ir import TensorType

passthrough("Identity", since=1)


@converter("CastLike", since=15)
def castlike_v15(cx, node):
    """A Cast when the target's dtype is known (its values, maybe empty, are not read)."""
    target = cx.type_of(node.input[1]) if len(node.input) > 1 else None
    if target is None:
        cx.emit("CastLike", node.input, node.output, cx.attributes(node, "CastLike"))
        return
    attrs = cx.attributes(node, "Cast")
    cx.emit("Cast", node.input[:1], node.output, dict(attrs, to=target.dtype))


@converter("Cast", since=6)
def cast_v6(cx, node):
    """``to`` is an ONNX element type. ``saturate`` (19+, default 1, as the older
    versions behave) matters for float8 targets, ``round_mode`` (24+) for float8e8m0."""
    attrs = cx.attributes(node, "Cast")
    attrs["to"] = dlc_dtype(attrs["to"], f"{node.op_type} node {node.name!r} (attribute to)")
    cx.emit("Cast", node.input, node.output, attrs)


@converter("BitCast", since=26)
def bitcast_v26(cx, node):
    attrs = cx.attributes(node, "BitCast")
    attrs["to"] = dlc_dtype(attrs["to"], f"{node.op_type} node {node.name!r} (attribute to)")
    cx.emit("BitCast", node.input, node.output, attrs)


@converter("Constant", since=1)
def constant_v1(cx, node):
    """The node's output becomes a constant of the graph."""
    from dlc.frontends.onnx.attributes import array_of

    where = f"Constant node {node.name!r}"
    values = []
    for attr in node.attribute:
        if attr.name == "value":
            values.append(array_of(attr.t, where))
        elif attr.name == "sparse_value":
            values.append(_dense(attr.sparse_tensor, where))
        elif attr.name == "value_float":
            values.append(np.array(attr.f, np.float32))
        elif attr.name == "value_floats":
            values.append(np.array(list(attr.floats), np.float32))
        elif attr.name == "value_int":
            values.append(np.array(attr.i, np.int64))
        elif attr.name == "value_ints":
            values.append(np.array(list(attr.ints), np.int64))
        elif attr.name in ("value_string", "value_strings"):
            raise UnsupportedOpError(f"{where}: string tensors are not supported")
        else:
            raise ModelError(f"{where}: unknown attribute {attr.name!r}")
    if len(values) != 1:
        raise ModelError(f"{where} must have exactly one value attribute, got "
                         f"{len(values)}")
    if len(node.output) != 1 or not node.output[0]:
        raise ModelError(f"{where} must have one output")
    name = node.output[0]
    if name in cx.graph.types or name in cx.graph.constants:
        raise ModelError(f"{where}: tensor {name!r} is produced twice")
    array = np.array(values[0], order="C")
    cx.graph.constants[name] = array
    cx.graph.types[name] = TensorType.of(array)


def _dense(sparse, where: str) -> np.ndarray:
    """A dense array from a SparseTensorProto (indices: [NNZ] linear or [NNZ, rank])."""
    from dlc.frontends.onnx.attributes import array_of

    values = array_of(sparse.values, where)
    indices = array_of(sparse.indices, where).astype(np.int64)
    dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
    try:
        if indices.ndim == 1:
            dense.reshape(-1)[indices] = values
        else:
            dense[tuple(indices.T)] = values
    except (IndexError, ValueError) as err:
        raise ModelError(f"{where}: malformed sparse tensor: {err}") from None
    return dense
