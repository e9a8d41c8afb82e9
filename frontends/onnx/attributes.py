"""ONNX attributes as Python values, with the spec's defaults and type checks."""

from __future__ import annotations

import numpy as np

from dlc.errors import ModelError, UnsupportedOpError

# AttributeProto.AttributeType
_FLOAT, _INT, _STRING, _TENSOR, _GRAPH = 1, 2, 3, 4, 5
_FLOATS, _INTS, _STRINGS, _TENSORS, _GRAPHS = 6, 7, 8, 9, 10
_SPARSE_TENSOR, _SPARSE_TENSORS, _TYPE_PROTO, _TYPE_PROTOS = 11, 12, 13, 14


def array_of(tensor, where: str = "") -> np.ndarray:
    """A NumPy array from a TensorProto (external data must already be loaded)."""
    from onnx import numpy_helper

    from dlc.frontends.onnx.types import dlc_dtype

    dlc_dtype(tensor.data_type, where or tensor.name)
    if tensor.data_location == 1 and not tensor.raw_data:  # EXTERNAL, not loaded
        raise ModelError(f"tensor {where or tensor.name!r} is stored in an external file that "
                         "was not loaded; pass the model's path instead of a ModelProto")
    try:
        array = numpy_helper.to_array(tensor)
    except (ValueError, TypeError) as err:
        raise ModelError(f"tensor {where or tensor.name!r} is malformed: {err}") from None
    return np.array(array, order="C")


def value_of(cx, attr, node):
    t = attr.type
    if t == _FLOAT:
        return float(attr.f)
    if t == _INT:
        return int(attr.i)
    if t == _STRING:
        return attr.s.decode("utf-8", errors="replace")
    if t == _TENSOR:
        return array_of(attr.t, f"attribute {attr.name} of {node.name or node.op_type}")
    if t == _GRAPH:
        return cx.convert_graph(attr.g, outer=set(cx.graph.types) | set(cx.graph.constants))
    if t == _FLOATS:
        return [float(x) for x in attr.floats]
    if t == _INTS:
        return [int(x) for x in attr.ints]
    if t == _STRINGS:
        return [s.decode("utf-8", errors="replace") for s in attr.strings]
    if t == _TENSORS:
        return [array_of(x) for x in attr.tensors]
    if t == _GRAPHS:
        outer = set(cx.graph.types) | set(cx.graph.constants)
        return [cx.convert_graph(g, outer=outer) for g in attr.graphs]
    raise UnsupportedOpError(f"attribute {attr.name} of {node.op_type} node "
                             f"{node.name!r} has an unsupported type ({t})")


def schema_of(op_type: str, domain: str, opset: int):
    import onnx.defs

    try:
        return onnx.defs.get_schema(op_type, opset, domain)
    except (onnx.defs.SchemaError, TypeError, ValueError):  # unknown op, or garbled names
        return None


def check_attribute_types(node, opsets: dict) -> None:
    """Raise ModelError if an attribute's type differs from the spec's."""
    domain = "" if node.domain in ("", "ai.onnx") else node.domain
    if domain not in opsets:
        return
    schema = schema_of(node.op_type, domain, opsets[domain])
    if schema is None:
        return
    for attr in node.attribute:
        if attr.ref_attr_name or attr.name not in schema.attributes:
            continue
        expected = int(schema.attributes[attr.name].type)
        if attr.type != expected and expected != 0:
            raise ModelError(f"{node.op_type} node {node.name!r}: attribute {attr.name} has "
                             f"type {_type_name(attr.type)}, the spec says "
                             f"{_type_name(expected)}")


def node_attributes(cx, node, dlc_op: str | None = None) -> dict:
    domain = "" if node.domain in ("", "ai.onnx") else node.domain
    schema = schema_of(node.op_type, domain, cx.opsets.get(domain, 1))
    check_attribute_types(node, cx.opsets)
    values = {}
    for attr in node.attribute:
        values[attr.name] = value_of(cx, attr, node)
    explicit = set(values)
    if schema is not None:
        for name, spec in schema.attributes.items():
            if name in values:
                continue
            default = spec.default_value
            if default is not None and default.type != 0 and default.name:
                values[name] = value_of(cx, default, node)
    if dlc_op is None:
        return values
    from dlc.ops import registry as ops

    known = ops.get(dlc_op).attrs
    out = {}
    for name, value in values.items():
        if name in known:
            out[name] = value
        elif name in explicit:
            raise UnsupportedOpError(f"{node.op_type} node {node.name!r}: attribute {name!r} "
                                     f"(opset {cx.opsets.get(domain)}) is not supported")
    return out


def _type_name(t: int) -> str:
    names = {1: "FLOAT", 2: "INT", 3: "STRING", 4: "TENSOR", 5: "GRAPH", 6: "FLOATS",
             7: "INTS", 8: "STRINGS", 9: "TENSORS", 10: "GRAPHS"}
    return names.get(t, str(t))
