"""Expand ONNX ops that the spec (or the model) defines as functions of other ops."""

from __future__ import annotations

from dlc.errors import UnsupportedOpError


def _schema(op_type, domain, opset):
    from dlc.frontends.onnx.attributes import schema_of

    return schema_of(op_type, domain, opset)


def has_function_body(op_type: str, domain: str, opset: int) -> bool:
    schema = _schema(op_type, domain, opset)
    if schema is None:
        return False
    return bool(schema.has_function or schema.has_context_dependent_function)


def _function_proto(cx, node, domain, opset):
    import onnx

    local = cx.functions.get((node.domain, node.op_type))
    if local is not None:
        return local
    schema = _schema(node.op_type, domain, opset)
    if schema is None:
        return None
    if schema.has_function:
        return schema.function_body
    if schema.has_context_dependent_function:
        types = []
        for name in node.input:
            t = cx.onnx_type(name) if name else None
            types.append(t if t is not None else onnx.TypeProto())
        try:
            data = schema.get_context_dependent_function(
                node.SerializeToString(), [t.SerializeToString() for t in types])
        except Exception as err:  # onnx raises a bare Exception type here
            raise UnsupportedOpError(f"{node.op_type} node {node.name!r}: cannot expand its "
                                     f"function body: {err}") from None
        proto = onnx.FunctionProto()
        proto.ParseFromString(data)
        return proto
    return None


def expand_function(cx, node, domain: str, opsets: dict) -> None:
    """Convert ``node`` by converting the nodes of its function body in its place."""
    import onnx

    opset = opsets.get(domain)
    proto = _function_proto(cx, node, domain, opset) if opset is not None or \
        (node.domain, node.op_type) in cx.functions else None
    if proto is None:
        raise UnsupportedOpError(f"{node.op_type} (opset {opset}) is not supported "
                                 f"(node {node.name!r})")
    prefix = cx.fresh(f"{node.name or node.op_type}")
    rename = {}
    for formal, actual in zip(proto.input, list(node.input) + [""] * len(proto.input)):
        rename[formal] = actual
    for formal, actual in zip(proto.output, node.output):
        rename[formal] = actual
    caller_attrs = {a.name: a for a in node.attribute}
    defaults = {a.name: a for a in getattr(proto, "attribute_proto", [])}
    schema = _schema(node.op_type, domain, opset) if opset is not None else None
    if schema is not None:
        for name, spec in schema.attributes.items():
            default = spec.default_value
            if name not in defaults and default is not None and default.type != 0:
                defaults[name] = default
    body_opsets = dict(opsets)
    for imp in proto.opset_import:
        body_opsets["" if imp.domain in ("", "ai.onnx") else imp.domain] = imp.version
    for inner in proto.node:
        new = onnx.NodeProto()
        new.CopyFrom(inner)
        del new.input[:]
        del new.output[:]
        new.input.extend(_renamed(x, rename, prefix) for x in inner.input)
        new.output.extend(_renamed(x, rename, prefix) for x in inner.output)
        del new.attribute[:]
        for attr in inner.attribute:
            if attr.ref_attr_name:
                source = caller_attrs.get(attr.ref_attr_name) or defaults.get(attr.ref_attr_name)
                if source is None:
                    continue
                copy = onnx.AttributeProto()
                copy.CopyFrom(source)
                copy.name = attr.name
                new.attribute.append(copy)
            else:
                new.attribute.append(attr)
        new.name = f"{prefix}/{inner.name or inner.op_type}"
        cx.convert_node(new, body_opsets)


def _renamed(name: str, rename: dict, prefix: str) -> str:
    if not name:
        return ""
    if name in rename:
        return rename[name]
    return f"{prefix}/{name}"
