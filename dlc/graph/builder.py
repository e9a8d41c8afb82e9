"""Build graphs from Python without ONNX, in a NumPy-like style.

    g = GraphBuilder("mlp")
    x = g.input("x", (1, 784))
    w = g.constant(np.random.rand(784, 10).astype("float32"))
    y = ops.Relu(x @ w)
    g.output(y)
    graph = g.build()

``dlc.graph.ops.<OpName>(...)`` applies any registered operator (ONNX names and
semantics), with attributes as keyword arguments. Types are inferred as nodes are added,
so shape errors surface at the line that causes them.
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes
from dlc.errors import ModelError
from dlc.graph.ir import Graph, Node, TensorType
from dlc.ops import registry


class Sym:
    """A tensor in a graph being built."""

    def __init__(self, builder: GraphBuilder, name: str):
        self.builder, self.name = builder, name

    @property
    def type(self) -> TensorType:
        t = self.builder.graph.types.get(self.name)
        if t is None:
            raise ModelError(f"the type of {self.name} depends on run-time values")
        return t

    @property
    def shape(self) -> tuple:
        return self.type.shape

    @property
    def dtype(self) -> str:
        return self.type.dtype

    def _other(self, value) -> Sym:
        if isinstance(value, Sym):
            return value
        return self.builder.constant(np.asarray(value, dtype=dtypes.to_numpy(self.dtype)))

    def __add__(self, o):
        return self.builder.op("Add", self, self._other(o))

    def __radd__(self, o):
        return self.builder.op("Add", self._other(o), self)

    def __sub__(self, o):
        return self.builder.op("Sub", self, self._other(o))

    def __rsub__(self, o):
        return self.builder.op("Sub", self._other(o), self)

    def __mul__(self, o):
        return self.builder.op("Mul", self, self._other(o))

    def __rmul__(self, o):
        return self.builder.op("Mul", self._other(o), self)

    def __truediv__(self, o):
        return self.builder.op("Div", self, self._other(o))

    def __rtruediv__(self, o):
        return self.builder.op("Div", self._other(o), self)

    def __matmul__(self, o):
        return self.builder.op("MatMul", self, self._other(o))

    def __neg__(self):
        return self.builder.op("Neg", self)

    def __repr__(self) -> str:
        return f"Sym({self.name}: {self.type})"


class GraphBuilder:
    """Accumulates inputs, constants and nodes; ``build()`` returns the Graph."""

    def __init__(self, name: str = "graph"):
        self.graph = Graph(name, [], [])
        self._counter = 0
        self._untyped: set = set()

    def fresh(self, base: str) -> str:
        while True:
            self._counter += 1
            name = f"{base}_{self._counter}"
            if name not in self.graph.types and name not in self._untyped:
                return name

    def _claim(self, name: str) -> str:
        if name in self.graph.types or name in self._untyped:
            raise ModelError(f"tensor name {name!r} is already used")
        return name

    def input(self, name: str, shape, dtype="float32") -> Sym:
        self._claim(name)
        self.graph.inputs.append(name)
        self.graph.types[name] = TensorType(tuple(shape), dtype)
        return Sym(self, name)

    def constant(self, value, name: str | None = None, dtype=None) -> Sym:
        array = np.array(value, dtype=dtype, order="C")  # a copy; keeps 0-d arrays 0-d
        name = self._claim(name) if name else self.fresh("const")
        self.graph.constants[name] = array
        self.graph.types[name] = TensorType.of(array)
        return Sym(self, name)

    def op(self, op_name: str, *inputs, name: str | None = None, outputs=None, **attrs):
        """Add a node; returns one Sym or a tuple of them for several outputs."""
        op = registry.get(op_name)
        in_names = []
        for x in inputs:
            if x is None:
                in_names.append("")
            elif isinstance(x, Sym):
                if x.builder is not self:
                    raise ModelError(f"{op_name}: input {x.name} belongs to another graph")
                in_names.append(x.name)
            else:
                in_names.append(self.constant(np.asarray(x)).name)
        g = self.graph
        in_types = [g.types.get(x) if x else None for x in in_names]
        in_values = [g.constants.get(x) if x else None for x in in_names]
        node_name = name or self.fresh(op_name.lower())
        if any(x and g.types.get(x) is None for x in in_names):
            types = None  # downstream of a run-time-typed tensor: checked when compiled
        else:
            ctx = registry.make_context(op, node_name, attrs, in_types, in_values)
            try:
                types = registry.infer_node(op, ctx)
            except registry.NeedsValueError:
                types = None  # typed at run time (data-dependent)
        if types is None:
            count = len(outputs) if outputs is not None else op.num_outputs[0]
            types = [None] * count
        if outputs is None:
            outputs = [node_name if len(types) == 1 else f"{node_name}_{k}"
                       for k in range(len(types))]
        outputs = [self._claim(o) for o in outputs]
        for o, t in zip(outputs, types):
            if t is not None:
                g.types[o] = t
            else:
                self._untyped.add(o)
        g.nodes.append(Node(op_name, tuple(in_names), tuple(outputs), dict(attrs), node_name))
        syms = tuple(Sym(self, o) for o in outputs)
        return syms[0] if len(syms) == 1 else syms

    def output(self, *syms) -> None:
        for s in syms:
            self.graph.outputs.append(s.name)

    def build(self) -> Graph:
        from dlc.graph.verify import verify

        if not self.graph.outputs:
            raise ModelError(f"graph {self.graph.name} has no outputs; call output(...)")
        graph = self.graph.copy()
        verify(graph)
        return graph


class _OpNamespace:
    """``ops.Conv(x, w, strides=[1, 1])``: any registered operator as a function."""

    def __getattr__(self, name: str):
        if name.startswith("_") or not registry.is_registered(name):
            raise AttributeError(f"no operator {name!r}")

        def apply(*inputs, **attrs):
            builder = next((x.builder for x in inputs if isinstance(x, Sym)), None)
            if builder is None:
                raise ModelError(f"{name}: at least one input must be a graph tensor")
            return builder.op(name, *inputs, **attrs)

        apply.__name__ = name
        return apply

    def __dir__(self):
        registry._load_all()
        return sorted(registry.OPS)


ops = _OpNamespace()
