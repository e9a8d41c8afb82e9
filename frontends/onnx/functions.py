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
    attributes = {**defaults, **caller_attrs}
    for inner in proto.node:
        new = onnx.NodeProto()
        new.CopyFrom(inner)
        del new.input[:]
        del new.output[:]
        new.input.extend(_renamed(x, rename, prefix) for x in inner.input)
        new.output.extend(_renamed(x, rename, prefix) for x in inner.output)
        _substitute_attributes(new, attributes)
        for sub in _subgraphs(new):
            _rename_free_names(sub, attributes, rename, prefix, set())
        new.name = f"{prefix}/{inner.name or inner.op_type}"
        cx.convert_node(new, body_opsets)


def _substitute_attributes(node, attributes: dict) -> None:
    """Replace, in place, the attributes of a body node that refer to the function's
    attributes by the caller's values (or the defaults; dropped when neither is set)."""
    import onnx

    kept = []
    for attr in node.attribute:
        if attr.ref_attr_name:
            source = attributes.get(attr.ref_attr_name)
            if source is None:
                continue
            copy = onnx.AttributeProto()
            copy.CopyFrom(source)
            copy.name = attr.name
            kept.append(copy)
        else:
            kept.append(attr)
    del node.attribute[:]
    node.attribute.extend(kept)


def _renamed(name: str, rename: dict, prefix: str) -> str:
    if not name:
        return ""
    if name in rename:
        return rename[name]
    return f"{prefix}/{name}"


def _subgraphs(node) -> list:
    return [g for attr in node.attribute
            for g in ([attr.g] if attr.type == 5 else list(attr.graphs))]


def _rename_free_names(graph, attributes: dict, rename: dict, prefix: str,
                       bound: set) -> None:
    """In a subgraph of a body node (a copy): rename the body names it reads like the
    body's own (names it defines itself shadow them) and substitute attribute
    references, in its subgraphs too."""
    local = set(bound)
    local.update(i.name for i in graph.input)
    local.update(i.name for i in graph.initializer)
    local.update(o for node in graph.node for o in node.output)
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name and name not in local:
                node.input[k] = _renamed(name, rename, prefix)
        _substitute_attributes(node, attributes)
        for sub in _subgraphs(node):
            _rename_free_names(sub, attributes, rename, prefix, local)
    for out in graph.output:
        if out.name not in local:
            out.name = _renamed(out.name, rename, prefix)


def _rename_captures(attr, rename_outer) -> None:
    """Rename, inside a graph attribute, the names it reads from the enclosing function
    (those not defined in the subgraph itself), in place."""
    graphs = [attr.g] if attr.type == 5 else list(attr.graphs) if attr.type == 10 else []
    for g in graphs:
        _rename_graph_captures(g, rename_outer, set())


def _rename_graph_captures(g, rename_outer, outer_local: set) -> None:
    local = set(outer_local)
    local.update(i.name for i in g.input)
    local.update(i.name for i in g.initializer)
    for node in g.node:
        local.update(x for x in node.output if x)
    for node in g.node:
        for k, x in enumerate(node.input):
            if x and x not in local:
                node.input[k] = rename_outer(x)
        for attr in node.attribute:
            subs = [attr.g] if attr.type == 5 else list(attr.graphs) if attr.type == 10 else []
            for sub in subs:
                _rename_graph_captures(sub, rename_outer, local)
    for out in g.output:
        if out.name not in local:
            out.name = rename_outer(out.name)
