"""Import an ONNX model into the dlc graph IR.

Converters are chosen by the model's opset; attribute defaults come from the ONNX spec;
initializers and Constant nodes become constants; ops without a converter whose spec
defines them as a function of other ops are expanded. Every unsupported op is reported at
once, before any other work.
"""

from __future__ import annotations

import os

import numpy as np

from dlc.errors import ModelError, UnsupportedOpError
from dlc.frontends.onnx import registry
from dlc.frontends.onnx.types import dlc_dtype
from dlc.graph.ir import Graph, Node, TensorType


def load_model(model):
    """A ModelProto from a ModelProto, a path or bytes (external data is loaded)."""
    import onnx
    from google.protobuf.message import DecodeError

    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_model_from_string(bytes(model))
        except (DecodeError, ValueError, RuntimeError) as err:
            raise ModelError(f"not a valid ONNX model: {err}") from None
    path = os.fspath(model)
    if not os.path.exists(path):
        raise ModelError(f"{path}: no such file")
    try:
        return onnx.load(path)
    except (DecodeError, ValueError, RuntimeError, OSError) as err:
        raise ModelError(f"{path} is not a valid ONNX model: {err}") from None


def check_text_fields(message, where: str = "model") -> None:
    """Raise ModelError if a string field of ``message`` (names, op types, domains, doc
    strings, at any depth) is not valid UTF-8: protobuf hands such fields over as bytes.
    Only string and message fields are read (not the weights' bytes)."""
    from google.protobuf.descriptor import FieldDescriptor

    for field in message.DESCRIPTOR.fields:
        if field.type not in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_MESSAGE):
            continue
        repeated = getattr(field, "is_repeated", None)
        if repeated is None:  # protobuf before 5.x
            repeated = field.label == FieldDescriptor.LABEL_REPEATED
        if not repeated and field.type == FieldDescriptor.TYPE_MESSAGE and \
                not message.HasField(field.name):
            continue
        value = getattr(message, field.name)
        items = list(value) if repeated else [value]
        if field.type == FieldDescriptor.TYPE_STRING:
            if any(isinstance(v, bytes) for v in items):
                raise ModelError(f"{where}.{field.name} is not valid UTF-8 text (a corrupted "
                                 "or non-ONNX file?)")
            continue
        for k, item in enumerate(items):
            name = getattr(item, "name", "")
            label = field.name if not repeated else f"{field.name}[{name!r}]" \
                if isinstance(name, str) and name else f"{field.name}[{k}]"
            check_text_fields(item, f"{where}.{label}")


def opsets_of(proto) -> dict:
    opsets = {}
    for imp in proto.opset_import:
        domain = "" if imp.domain in ("", "ai.onnx") else imp.domain
        opsets[domain] = imp.version
    return opsets


def from_onnx(model, input_shapes=None) -> Graph:
    """Convert an ONNX model (ModelProto or path) to a dlc Graph."""
    from dlc.graph.verify import verify

    proto = load_model(model)
    check_text_fields(proto)
    opsets = opsets_of(proto)
    if "" not in opsets and any(_domain(n) == "" for n in _nodes(proto.graph)):
        raise ModelError("the model uses operators of the default ONNX domain but imports no "
                         "version of the default operator set")
    cx = ImportContext(opsets, {(f.domain, f.name): f for f in proto.functions})
    check_supported(proto.graph, cx)
    graph = cx.convert_graph(proto.graph, input_shapes=input_shapes or {}, top=True)
    verify(graph)
    return graph


def _domain(node) -> str:
    return "" if node.domain in ("", "ai.onnx") else node.domain


def _nodes(graph_proto):
    """Every node of a GraphProto, subgraphs included."""
    for node in graph_proto.node:
        yield node
        for attr in node.attribute:
            for sub in [attr.g] if attr.type == 5 else list(attr.graphs):
                yield from _nodes(sub)


def check_supported(graph_proto, cx: ImportContext) -> None:
    """Raise UnsupportedOpError naming every unsupported op type with its nodes."""
    missing: dict = {}

    def walk(g, opsets):
        for node in g.node:
            domain = "" if node.domain in ("", "ai.onnx") else node.domain
            if not cx.can_convert(node.op_type, domain, opsets):
                key = (domain, node.op_type, opsets.get(domain))
                missing.setdefault(key, []).append(node.name or "<unnamed>")
            for attr in node.attribute:
                if attr.type == 5:  # GRAPH
                    walk(attr.g, opsets)
                elif attr.type == 10:  # GRAPHS
                    for sub in attr.graphs:
                        walk(sub, opsets)

    walk(graph_proto, cx.opsets)
    if missing:
        lines = []
        for (domain, op, version), names in sorted(missing.items()):
            where = f"{domain + '.' if domain else ''}{op}"
            opset = f"opset {version}" if version is not None else "unknown domain"
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5
                                            else "")
            lines.append(f"  {where} ({opset}): {shown}")
        raise UnsupportedOpError(f"{len(missing)} unsupported operator type(s):\n"
                                 + "\n".join(lines))


class ImportContext:
    """Conversion state: opsets, model-local functions, the graph being built."""

    def __init__(self, opsets: dict, functions: dict):
        self.opsets = dict(opsets)
        self.functions = functions
        self.graph: Graph | None = None
        self._counter = 0
        self._value_types: dict = {}
        self.current_name = ""  # the node being converted: the default name of what it emits

    # -- queries ---------------------------------------------------------------------------
    def can_convert(self, op_type: str, domain: str, opsets: dict | None = None) -> bool:
        opsets = opsets or self.opsets
        if domain not in opsets:
            return (domain, op_type) in self.functions
        if registry.find(op_type, opsets[domain], domain) is not None:
            return True
        if (domain, op_type) in self.functions:
            return True
        from dlc.frontends.onnx.functions import has_function_body

        return has_function_body(op_type, domain, opsets[domain])

    @property
    def opset(self) -> int:
        return self.opsets[""]

    # -- building --------------------------------------------------------------------------
    def fresh(self, base: str) -> str:
        while True:
            self._counter += 1
            name = f"{base}__{self._counter}"
            if name not in self.graph.types and name not in self.graph.constants:
                return name

    def constant(self, array, base: str = "const") -> str:
        name = self.fresh(base)
        array = np.asarray(array)
        self.graph.constants[name] = array
        self.graph.types[name] = TensorType.of(array)
        return name

    def emit(self, op: str, inputs, outputs, attrs: dict | None = None, name: str = "") -> None:
        node = Node(op, tuple(inputs), tuple(outputs), dict(attrs or {}),
                    name or self.current_name)
        self.graph.nodes.append(node)
        self._infer(node)

    def _infer(self, node: Node) -> None:
        """Type the outputs of a new node when its inputs are typed (used by converters
        and function expansion that depend on input types)."""
        from dlc.ops import registry as ops

        g = self.graph
        if any(x and x not in g.types for x in node.inputs):
            return
        op = ops.get(node.op)
        ctx = ops.make_context(op, node.name, node.attrs,
                               [g.types[x] if x else None for x in node.inputs],
                               [g.constants.get(x) if x else None for x in node.inputs])
        try:
            types = ops.infer_node(op, ctx)
        except ops.NeedsValueError:
            return
        for name, t in zip(node.outputs, types):
            if name:
                g.types[name] = t

    def type_of(self, name: str):
        """The dlc TensorType of a tensor converted so far, or None if not known."""
        return self.graph.types.get(name) if name else None

    def onnx_type(self, name: str):
        """The ONNX TypeProto of a tensor converted so far, or None."""
        from onnx import helper

        from dlc.frontends.onnx.types import onnx_elem_type

        t = self.type_of(name)
        if t is None:
            return None
        return helper.make_tensor_type_proto(onnx_elem_type(t.dtype), list(t.shape))

    def attributes(self, node, dlc_op: str | None = None) -> dict:
        """Attributes of an ONNX node as Python values, with the spec's defaults; when
        ``dlc_op`` is given, only those that op knows (an explicitly set attribute it does
        not know is an error)."""
        from dlc.frontends.onnx.attributes import node_attributes

        return node_attributes(self, node, dlc_op)

    # -- graphs ----------------------------------------------------------------------------
    def convert_graph(self, g, input_shapes=None, top=False, outer=None) -> Graph:
        from dlc.frontends.onnx.attributes import array_of

        parent, parent_node_name = self.graph, self.current_name
        graph = Graph(g.name or "main", [], [])
        self.graph = graph
        initializers = {init.name: init for init in g.initializer}
        for init in g.initializer:
            graph.constants[init.name] = array_of(init, init.name)
            graph.types[init.name] = TensorType.of(graph.constants[init.name])
        for sparse in g.sparse_initializer:
            from onnx import numpy_helper

            dense = numpy_helper.to_array(sparse.values)
            graph.constants[sparse.values.name] = _densify(sparse, dense)
            graph.types[sparse.values.name] = TensorType.of(graph.constants[sparse.values.name])
        for vi in g.input:
            if vi.name in initializers:
                continue  # an initializer listed as input (older exporters): a constant
            graph.inputs.append(vi.name)
            t = _value_type(vi, (input_shapes or {}).get(vi.name), top)
            if t is not None:
                graph.types[vi.name] = t
        if top and input_shapes:
            unknown = sorted(set(input_shapes) - set(graph.inputs))
            if unknown:
                raise ModelError(f"input_shapes names {', '.join(unknown)}, which are not "
                                 f"inputs of the model; inputs: {', '.join(graph.inputs)}")
        for node in topological_order(g, set(graph.inputs) | set(graph.constants)
                                      | set(outer or ())):
            self.convert_node(node)
        graph.outputs = [o.name for o in g.output]
        self.graph, self.current_name = parent, parent_node_name  # If/Loop keep their name
        return graph

    def convert_node(self, node, opsets: dict | None = None) -> None:
        from dlc.frontends.onnx.attributes import check_attribute_types

        opsets = opsets or self.opsets
        check_attribute_types(node, opsets)
        domain = "" if node.domain in ("", "ai.onnx") else node.domain
        self.current_name = node.name or f"{node.op_type}_{len(self.graph.nodes)}"
        fn = None
        if domain in opsets:
            fn = registry.find(node.op_type, opsets[domain], domain)
        if fn is not None:
            saved = self.opsets
            self.opsets = opsets
            try:
                fn(self, node)
            finally:
                self.opsets = saved
            return
        from dlc.frontends.onnx.functions import expand_function

        expand_function(self, node, domain, opsets)


def topological_order(g, available: set) -> list:
    """Nodes of a GraphProto in dependency order; cycles and undefined inputs raise."""
    producers = {}
    for node in g.node:
        for out in node.output:
            if out:
                if out in producers or out in available:
                    raise ModelError(f"tensor {out!r} is produced twice (node "
                                     f"{node.name or node.op_type})")
                producers[out] = node
    order, state = [], {}
    for root in g.node:
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            key = id(node)
            if done:
                state[key] = 2
                order.append(node)
                continue
            if state.get(key) == 2:
                continue
            if state.get(key) == 1:
                raise ModelError(f"the graph has a cycle through node {node.name or node.op_type}")
            state[key] = 1
            stack.append((node, True))
            for name in reversed(list(node.input) + list(_captured(node))):
                if not name or name in available:
                    continue
                dep = producers.get(name)
                if dep is None:
                    if name in _subgraph_locals(node):
                        continue
                    continue  # outer-scope or dangling: reported by the verifier
                if state.get(id(dep)) == 1:
                    raise ModelError(f"the graph has a cycle through node "
                                     f"{dep.name or dep.op_type}")
                if state.get(id(dep)) != 2:
                    stack.append((dep, False))
    return order


def _captured(node):
    """Names a node's subgraphs read from the enclosing graph."""
    names = []
    for attr in node.attribute:
        subs = [attr.g] if attr.type == 5 else list(attr.graphs) if attr.type == 10 else []
        for sub in subs:
            local = {i.name for i in sub.input} | {i.name for i in sub.initializer}
            for inner in sub.node:
                local.update(inner.output)
            for inner in sub.node:
                names.extend(x for x in inner.input if x and x not in local)
                names.extend(_captured(inner))
    return names


def _subgraph_locals(node):
    return set()


def _value_type(vi, override, top: bool):
    t = vi.type
    if not t.HasField("tensor_type"):
        kind = t.WhichOneof("value")
        if kind is None and not top:
            return None  # subgraph inputs may leave their type to the enclosing op
        raise UnsupportedOpError(f"input {vi.name!r} has type {kind}; only tensors are "
                                 "supported")
    tt = t.tensor_type
    dtype = dlc_dtype(tt.elem_type, f"input {vi.name!r}")
    if override is not None:
        shape = tuple(int(d) for d in override)
        if tt.HasField("shape") and len(tt.shape.dim) != len(shape):
            raise ModelError(f"input_shapes gives {vi.name!r} rank {len(shape)} but the model "
                             f"declares rank {len(tt.shape.dim)}")
        return TensorType(shape, dtype)
    if not tt.HasField("shape"):
        if top:
            raise ModelError(f"input {vi.name!r} has no declared shape; give it, e.g. "
                             f"input_shapes={{'{vi.name}': (1, 3, 224, 224)}} "
                             f"(CLI: --input-shape {vi.name}=1x3x224x224)")
        return None
    dims = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(d.dim_value)
        else:
            if top:
                symbol = d.dim_param or "?"
                shown = "x".join(dd.dim_param or str(dd.dim_value) if not dd.HasField(
                    "dim_value") else str(dd.dim_value) for dd in tt.shape.dim)
                raise ModelError(f"input {vi.name!r} has a symbolic dimension {symbol!r} "
                                 f"(shape {shown}); give concrete shapes, e.g. "
                                 f"input_shapes={{'{vi.name}': (...)}} "
                                 f"(CLI: --input-shape {vi.name}=...)")
            return None
    return TensorType(tuple(dims), dtype)


def _densify(sparse, values):
    from onnx import numpy_helper

    dense = np.zeros(tuple(sparse.dims), dtype=values.dtype)
    idx = numpy_helper.to_array(sparse.indices)
    if idx.ndim == 1:
        dense.reshape(-1)[idx] = values
    else:
        dense[tuple(idx.T)] = values
    return dense
