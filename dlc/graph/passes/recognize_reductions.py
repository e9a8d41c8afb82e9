"""Recognize decomposed Softmax, LogSoftmax, LayerNormalization and Gelu (as older
exporters write them) and replace each by the single op.

- Softmax: ``e = Exp(Sub(x, ReduceMax(x, [a]))); Div(e, ReduceSum(e, [a]))`` (torch's
  export of softmax over a non-last axis before opset 13). The form without ReduceMax is
  left alone: it overflows where Softmax does not.
- LogSoftmax: ``s = Sub(x, ReduceMax(x, [a])); Sub(s, Log(ReduceSum(Exp(s), [a])))``.
- LayerNormalization over the trailing axes (torch before opset 17):
  ``d = Sub(x, ReduceMean(x)); v = ReduceMean(Pow(d, 2))`` (or ``Mul(d, d)``);
  ``n = Div(d, Sqrt(Add(v, eps)))`` (or ``Mul(d, Reciprocal(..))``), then optionally
  ``Mul(n, gamma)`` and ``Add(.., beta)`` (either operand order); gamma and beta need not
  be constant but must broadcast to ``x``. Without gamma the scale is a constant of ones.
  Statistics are computed in float32 (float64 for float64 inputs).
- Gelu: ``x * (Erf(x / sqrt(2)) + 1) * 0.5`` with the three factors in any order and
  association, ``x * (1 / sqrt(2))`` for the division and a two-input ``Sum`` for the
  addition (torch's export before opset 20; ONNX's own expansion of Gelu).

Every reduction uses keepdims=1; every intermediate must be read only inside the pattern
(not by a graph output or a body). The single op computes the same function with its own
evaluation order and precision (sums in float64 for float32, half precision in float32),
so results differ by rounding only. Bodies are left alone.

Before::

    graph g(x: float32[2, 5]):
      axes = constant int64[1] [1]
      m = ReduceMax(x, axes) : float32[2, 1]
      s = Sub(x, m) : float32[2, 5]
      e = Exp(s) : float32[2, 5]
      t = ReduceSum(e, axes) : float32[2, 1]
      y = Div(e, t) : float32[2, 5]
      return y

After::

    graph g(x: float32[2, 5]):
      axes = constant int64[1] [1]
      y = Softmax(x) {axis=1} : float32[2, 5]
      return y
"""

from __future__ import annotations

import math

import numpy as np

from dlc import dtypes
from dlc.graph.ir import Graph, Node, TensorType
from dlc.graph.passes.rewrite import Namer, constant, prune_types, scalar_constant, use_counts
from dlc.ops import registry

SQRT2 = math.sqrt(2.0)


def recognize_reductions(graph: Graph) -> Graph:
    """Replace decomposed softmax, layer normalization and Gelu by single ops (see the
    module docstring); ``graph`` itself when none is found."""
    m = _Matcher(graph)
    replaced: dict = {}  # id(anchor) -> new node
    consumed: set = set()
    for node in reversed(graph.nodes):
        if id(node) in consumed:
            continue
        for match in (m.softmax, m.log_softmax, m.layer_norm, m.gelu):
            found = match(node)
            if found is None:
                continue
            new, used = found
            if any(id(n) in consumed for n in used):
                continue
            consumed.update(id(n) for n in used)
            replaced[id(node)] = new
            break
    if not replaced:
        return graph
    out = m.out
    out.nodes = [replaced.get(id(n), n) for n in graph.nodes
                 if id(n) in replaced or id(n) not in consumed]
    prune_types(out)
    return out


class _Matcher:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.out = graph.copy()
        self.uses = use_counts(graph)
        self.producer = graph.producers()
        self.namer = Namer(graph)

    # -- helpers -------------------------------------------------------------------------
    def inner(self, name: str, ops, uses: int = 1):
        """The node producing ``name`` if its op is in ``ops`` and ``name`` is read exactly
        ``uses`` times, never as a graph output; else None."""
        node = self.producer.get(name)
        if node is None or node.op not in ops or self.uses.get(name) != uses or \
                name in self.graph.outputs or name not in self.graph.types:
            return None
        if any(o and self.uses.get(o) for o in node.outputs[1:]):
            return None
        return node

    def axes(self, node: Node):
        """The sorted, normalized axes of a keepdims reduction node, or None."""
        if node.attrs.get("keepdims", 1) != 1:
            return None
        rank = self.graph.types[node.inputs[0]].ndim
        if rank == 0:
            return None
        name = node.inputs[1] if len(node.inputs) > 1 else ""
        if not name:
            return None if node.attrs.get("noop_with_empty_axes", 0) else list(range(rank))
        value = constant(self.graph, name)
        if value is None:
            return None
        return sorted(int(a) % rank for a in value.reshape(-1))

    def is_const(self, name: str, value: float, rtol: float = 0.0) -> bool:
        v = scalar_constant(self.graph, name)
        return v is not None and abs(v - value) <= rtol * abs(value)

    def split(self, node: Node, want):
        """(other operand, matched operand) of a commutative binary node whose operand
        satisfies ``want(name)``, trying both orders; None if neither does."""
        for i, j in ((0, 1), (1, 0)):
            found = want(node.inputs[j])
            if found:
                return node.inputs[i], found
        return None

    def same_type(self, a: str, b: str) -> bool:
        ta, tb = self.graph.types.get(a), self.graph.types.get(b)
        return ta is not None and ta == tb and ta.dtype in registry.FLOATS

    def max_shift(self, s: Node):
        """(x, axis, the ReduceMax) of ``s = Sub(x, ReduceMax(x, [axis]))``, or None."""
        x = s.inputs[0]
        mx = self.inner(s.inputs[1], ("ReduceMax",))
        if mx is None or mx.inputs[0] != x or not self.same_type(x, s.outputs[0]):
            return None
        axes = self.axes(mx)
        return (x, axes[0], mx) if axes is not None and len(axes) == 1 else None

    def shifted_source(self, s: Node, t: Node, y: str):
        """(x, axis, max node) when ``s`` is ``x - max(x)`` along the axis the sum ``t``
        reduces and ``x`` has the type of the result ``y``, else None."""
        found = self.max_shift(s)
        if found is None or self.axes(t) != [found[1]] or not self.same_type(found[0], y):
            return None
        return found

    # -- patterns ------------------------------------------------------------------------
    def softmax(self, node: Node):
        if node.op != "Div":
            return None
        e = self.inner(node.inputs[0], ("Exp",), uses=2)
        t = self.inner(node.inputs[1], ("ReduceSum",))
        s = self.inner(e.inputs[0], ("Sub",)) if e is not None else None
        if s is None or t is None or t.inputs[0] != e.outputs[0]:
            return None
        found = self.shifted_source(s, t, node.outputs[0])
        if found is None:
            return None
        x, axis, mx = found
        return node.with_(op="Softmax", inputs=(x,), attrs={"axis": axis}), [mx, s, e, t]

    def log_softmax(self, node: Node):
        if node.op != "Sub":
            return None
        s = self.inner(node.inputs[0], ("Sub",), uses=2)
        lg = self.inner(node.inputs[1], ("Log",))
        t = self.inner(lg.inputs[0], ("ReduceSum",)) if lg is not None else None
        e = self.inner(t.inputs[0], ("Exp",)) if t is not None else None
        if s is None or e is None or e.inputs[0] != s.outputs[0]:
            return None
        found = self.shifted_source(s, t, node.outputs[0])
        if found is None:
            return None
        x, axis, mx = found
        return node.with_(op="LogSoftmax", inputs=(x,), attrs={"axis": axis}), \
            [mx, s, e, t, lg]

    def layer_norm(self, node: Node):
        """``node`` as the end of ``[Add(.., beta)] <- [Mul(.., gamma)] <- core``."""
        bias = scale = None
        used, head = [], node
        if node.op == "Add":
            found = self.split(node, lambda v: self.inner(v, ("Mul", "Div")))
            if found is None:
                return None
            bias, head = found
            used.append(head)
        core = self.core_at(head)
        if core is None and head.op == "Mul":
            found = self.split(head, self.core_of)
            if found is None:
                return None
            scale, core = found
            used.append(head)
        if core is None:
            return None
        x, nodes, eps, axis = core
        xt = self.graph.types[x]
        if not self.same_type(x, node.outputs[0]):
            return None
        for operand in (scale, bias):
            t = self.graph.types.get(operand) if operand else xt
            if t is None or t.dtype != xt.dtype or not _broadcasts_to(t.shape, xt.shape):
                return None
        if scale is None:
            ones = np.ones(xt.shape[axis:], dtypes.to_numpy(xt.dtype))
            scale = self.namer.fresh(f"{node.outputs[0]}_scale")
            self.out.constants[scale] = ones
            self.out.types[scale] = TensorType.of(ones)
        attrs = {"axis": axis, "epsilon": eps}
        if xt.dtype == "float64":
            attrs["stash_type"] = 11  # statistics in float64, like the decomposed graph
        new = Node("LayerNormalization", (x, scale) + ((bias,) if bias else ()),
                   (node.outputs[0],), attrs, node.name)
        used = {id(u): u for u in used + nodes if u is not node}
        return new, list(used.values())

    def core_of(self, name: str):
        node = self.inner(name, ("Div", "Mul"))
        return self.core_at(node) if node is not None else None

    def core_at(self, n: Node):
        """(x, nodes, eps, first axis) when ``n`` is ``Div(d, Sqrt(Add(v, eps)))`` (or
        ``Mul(d, Reciprocal(Sqrt(..)))``) with ``d = Sub(x, ReduceMean(x))`` and
        ``v = ReduceMean(Pow(d, 2))`` (or of ``Mul(d, d)``) over the trailing axes."""
        if n.op == "Div":
            sd, extra = self.inner(n.inputs[1], ("Sqrt",)), []
        elif n.op == "Mul":
            rec = self.inner(n.inputs[1], ("Reciprocal",))
            sd, extra = (self.inner(rec.inputs[0], ("Sqrt",)), [rec]) if rec else (None, [])
        else:
            return None
        ve = self.inner(sd.inputs[0], ("Add",)) if sd is not None else None
        found = self.split(ve, lambda v: self.inner(v, ("ReduceMean",))) if ve else None
        eps = scalar_constant(self.graph, found[0]) if found else None
        if eps is None:
            return None
        var, d_name = found[1], n.inputs[0]
        p = self.inner(var.inputs[0], ("Pow", "Mul"))
        if p is None or p.inputs[0] != d_name or not (
                p.inputs[1] == d_name if p.op == "Mul" else self.is_const(p.inputs[1], 2.0)):
            return None
        d = self.inner(d_name, ("Sub",), uses=3 if p.op == "Mul" else 2)
        mean = self.inner(d.inputs[1], ("ReduceMean",)) if d is not None else None
        if mean is None or mean.inputs[0] != d.inputs[0]:
            return None
        x = d.inputs[0]
        if not self.same_type(x, n.outputs[0]):
            return None
        axes, rank = self.axes(mean), self.graph.types[x].ndim
        if not axes or axes != self.axes(var) or axes != list(range(axes[0], rank)):
            return None
        return x, [n, *extra, sd, ve, var, p, d, mean], eps, axes[0]

    def gelu(self, node: Node):
        if node.op != "Mul" or not registry.is_registered("Gelu"):
            return None
        leaves, muls = self.product(node)
        if len(leaves) != 3:
            return None
        half = [v for v in leaves if self.is_const(v, 0.5)]
        rest = [v for v in leaves if v not in half]
        if len(half) != 1 or len(rest) != 2:
            return None
        for x, a in (rest, rest[::-1]):
            found = self.erf_term(a, x)
            if found is not None and self.same_type(x, node.outputs[0]):
                return node.with_(op="Gelu", inputs=(x,), attrs={}), muls[1:] + found
        return None

    def product(self, node: Node):
        """(leaf operands, Mul nodes) of the tree of single-use Muls rooted at ``node``."""
        leaves, muls, todo = [], [node], list(node.inputs)
        while todo:
            name = todo.pop()
            inner = self.inner(name, ("Mul",))
            if inner is not None and len(muls) < 2:  # Gelu's product has two Muls
                muls.append(inner)
                todo.extend(inner.inputs)
            else:
                leaves.append(name)
        return leaves, muls

    def erf_term(self, a: str, x: str):
        """The nodes of ``Add(Erf(x / sqrt(2)), 1)`` (or Sum) producing ``a``, or None."""
        add = self.inner(a, ("Add", "Sum"))
        if add is None or len(add.inputs) != 2:
            return None
        found = self.split(add, lambda v: self.inner(v, ("Erf",)))
        if found is None or not self.is_const(found[0], 1.0):
            return None
        erf = found[1]
        div = self.inner(erf.inputs[0], ("Div", "Mul"))
        if div is None:
            return None
        a, b = div.inputs
        if div.op == "Div":
            ok = a == x and self.is_const(b, SQRT2, 1e-6)
        else:
            ok = (a == x and self.is_const(b, 1 / SQRT2, 1e-6)) or \
                (b == x and self.is_const(a, 1 / SQRT2, 1e-6))
        return [add, erf, div] if ok else None


def _broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Unidirectional broadcasting: ``shape`` stretches to ``target`` unchanged."""
    if len(shape) > len(target):
        return False
    return all(d in (1, t) for d, t in zip(shape[::-1], target[::-1]))
