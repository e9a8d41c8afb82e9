"""Remove operations that return their input, and collapse chains of reshapes and of
transposes.

Identities (the node goes; its readers read the input):

- ``Identity``; ``Dropout`` without a true ``training_mode`` whose mask nothing reads;
- ``Cast``/``CastLike`` to the input's dtype;
- ``Reshape``, ``Flatten``, ``Squeeze``, ``Unsqueeze``, ``Expand`` whose output type is the
  input's; ``Transpose`` with the identity permutation;
- ``Mul(x, 1)``, ``Mul(1, x)``, ``Div(x, 1)`` (exact in IEEE arithmetic: NaN, infinities
  and -0.0 come through unchanged) and integer ``Add``/``Sub`` of 0, whenever the output
  type is ``x``'s (broadcasting does not change the shape).
- Float ``Add(x, -0.0)``, ``Add(-0.0, x)`` and ``Sub(x, +0.0)``, which are exact too. Float
  ``Add`` of ``+0.0`` (and ``Sub`` of ``-0.0``) is kept: ``-0.0 + 0.0`` is ``+0.0``, so
  dropping it would change the sign of zero results (visible through division, for
  instance). Constants of any other value are never treated as neutral.

Chains: a Reshape, Flatten, Squeeze or Unsqueeze of such a copy becomes one Reshape of the
original tensor (to the same output shape); a Transpose of a Transpose becomes one
Transpose with the composed permutation (and vanishes when that is the identity). The
intermediate copies stay while something else reads them (``eliminate_dead_nodes``
removes the rest). Reshape -> Transpose -> Reshape is left alone.

A removed node that produced a graph output keeps that name: the input's producer is
renamed to it, when the input is an intermediate tensor that is not a graph output
itself; otherwise the node stays. Bodies are left alone (their reads of renamed outer
tensors follow the renaming). Results are bit-identical.

Before::

    graph g(x: float32[2, 3]):
      one = constant float32[] 1.0
      a = Identity(x) : float32[2, 3]
      t1 = Transpose(a) {perm=[1, 0]} : float32[3, 2]
      t2 = Transpose(t1) {perm=[1, 0]} : float32[2, 3]
      r1 = Flatten(t2) {axis=0} : float32[1, 6]
      r2 = Squeeze(r1) : float32[6]
      y = Mul(r2, one) : float32[6]
      return y

After::

    graph g(x: float32[2, 3]):
      one = constant float32[] 1.0
      r2_shape = constant int64[1] [6]
      t1 = Transpose(x) {perm=[1, 0]} : float32[3, 2]
      r1 = Flatten(x) {axis=0} : float32[1, 6]
      y = Reshape(x, r2_shape) : float32[6]
      return y
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes
from dlc.graph.ir import Graph, Node, TensorType
from dlc.graph.passes.rewrite import (
    Namer,
    constant,
    prune_types,
    rename_everywhere,
    rename_reads,
    use_counts,
)

COPIES = ("Reshape", "Flatten", "Squeeze", "Unsqueeze")
SAME_TYPE = COPIES + ("Expand",)


def simplify_algebra(graph: Graph) -> Graph:
    """Drop identities and collapse copy chains (see the module docstring); ``graph``
    itself when nothing simplifies."""
    return _Simplifier(graph).run()


class _Simplifier:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.out = graph.copy()
        self.out.nodes = []
        self.outputs = set(graph.outputs)
        self.producer: dict = {}  # tensor -> index in out.nodes
        self.subst: dict = {}     # removed tensor -> the tensor its readers read
        self.renames: dict = {}   # tensor -> graph output name its producer takes over
        self.namer = Namer(graph)
        self.uses = use_counts(graph)
        self.changed = False

    def run(self) -> Graph:
        for node in self.graph.nodes:
            self.visit(rename_reads(node, self.subst))
        if not self.changed:
            return self.graph
        self.out.nodes = rename_everywhere(self.out.nodes, self.renames)
        prune_types(self.out)
        return self.out

    def typed(self, node: Node) -> bool:
        return all(x in self.out.types for x in node.inputs + node.outputs if x)

    def emit(self, node: Node) -> None:
        self.producer.update({o: len(self.out.nodes) for o in node.outputs if o})
        self.out.nodes.append(node)

    def visit(self, node: Node) -> None:
        if not self.typed(node) or not node.inputs or not node.outputs[0]:
            self.emit(node)
            return
        collapsed = self.collapse(node)
        if collapsed is not node:
            self.changed = True
            node = collapsed
        source = self.identity_source(node)
        if source is not None and self.forward(node.outputs[0], source):
            self.changed = True
            return
        self.emit(node)

    # -- chains ------------------------------------------------------------------------
    def collapse(self, node: Node) -> Node:
        """One Reshape for a copy of a copy, one Transpose for a transpose of one."""
        index = self.producer.get(node.inputs[0])
        prev = self.out.nodes[index] if index is not None else None
        if prev is None or not self.typed(prev):
            return node
        if node.op in COPIES and prev.op in COPIES:
            shape = np.array(self.out.types[node.outputs[0]].shape, np.int64)
            name = self.namer.fresh(f"{node.outputs[0]}_shape")
            self.out.constants[name] = shape
            self.out.types[name] = TensorType.of(shape)
            attrs = {"allowzero": 1} if 0 in shape else {}
            return Node("Reshape", (prev.inputs[0], name), node.outputs, attrs, node.name)
        if node.op == "Transpose" and prev.op == "Transpose":
            first = _perm(prev.attrs, self.out.types[prev.inputs[0]].ndim)
            second = _perm(node.attrs, len(first))
            perm = [first[p] for p in second]
            return node.with_(inputs=(prev.inputs[0],), attrs={"perm": perm})
        return node

    # -- identities --------------------------------------------------------------------
    def identity_source(self, node: Node):
        """The input that ``node``'s first output always equals, or None."""
        types, op, x = self.out.types, node.op, node.inputs[0]
        out_type = types[node.outputs[0]]
        if op == "Identity":
            return x
        if op == "Dropout":
            return x if self.inference_dropout(node) else None
        if op in ("Cast", "CastLike") + SAME_TYPE:
            return x if out_type == types[x] else None
        if op == "Transpose":
            perm = _perm(node.attrs, types[x].ndim)
            return x if perm == sorted(perm) else None
        if op in ("Add", "Sub", "Mul", "Div") and len(node.inputs) == 2:
            return self.neutral_operand(node, out_type)
        return None

    def neutral_operand(self, node: Node, out_type):
        """The operand ``x`` of ``x * 1``, ``x / 1``, ``x + 0`` or ``x - 0`` (see the module
        docstring for the sign of float zeros)."""
        orders = [(0, 1), (1, 0)] if node.op in ("Add", "Mul") else [(0, 1)]
        for i, j in orders:
            x, c = node.inputs[i], constant(self.out, node.inputs[j])
            if c is None or self.out.types[x] != out_type:
                continue
            value = c.astype(np.float64) if dtypes.is_float(out_type.dtype) else c
            if node.op in ("Mul", "Div"):
                if np.all(value == 1):
                    return x
            elif np.all(value == 0):
                if not dtypes.is_float(out_type.dtype):
                    return x
                negative = np.signbit(value)
                if np.all(negative) if node.op == "Add" else not np.any(negative):
                    return x
        return None

    def inference_dropout(self, node: Node) -> bool:
        """Dropout without a true training_mode whose mask nothing reads."""
        training = node.inputs[2] if len(node.inputs) > 2 else ""
        value = constant(self.out, training) if training else np.zeros(())
        if value is None or np.any(value):
            return False
        return not any(o and self.uses.get(o) for o in node.outputs[1:])

    def forward(self, removed: str, source: str) -> bool:
        """Make readers of ``removed`` read ``source``; False if that is impossible."""
        if removed not in self.outputs:
            self.subst[removed] = source
            return True
        index = self.producer.get(source)
        if index is None or source in self.outputs or source in self.graph.inputs:
            return False
        # the graph output keeps its name: the source's producer now defines it
        self.renames[source] = removed
        self.subst[source] = removed
        prev = self.out.nodes[index]
        self.out.nodes[index] = prev.with_(
            outputs=tuple(removed if o == source else o for o in prev.outputs))
        self.producer[removed] = index
        return True


def _perm(attrs: dict, rank: int) -> list:
    perm = attrs.get("perm")
    if perm is None:
        return list(range(rank))[::-1]
    return [int(p) % rank if rank else int(p) for p in perm]
