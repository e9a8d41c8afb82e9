"""Run float32 2-D convolutions in a blocked channel layout (NCHW{b}c, see dlc.ops.layout).

* A Conv with constant weights (and bias), group 1 or depthwise (group = in = out
  channels), becomes Conv2dNCHWc / DepthwiseConv2dNCHWc: its weights and bias are repacked
  now, once, into new constants, and its pads made explicit.
* The blocked layout flows on through the ops that follow: elementwise and broadcasting
  ops (Relu, Clip, Add of two blocked tensors, Mul by a per-channel constant, whose
  constants are repacked, ...) and MaxPool, AveragePool, GlobalAveragePool (their NCHWc
  variants).
* Layout changes happen only at the edges of these chains, and inside convolutions when
  they can: a convolution reads a plain NCHW input itself (its padded copy, or its inner
  loop, takes the blocks), and one whose result no reader would take blocked writes NCHW
  (``out_layout``). Elsewhere a LayoutTransform converts: into blocks for a plain operand of
  a blocked elementwise op, back to NCHW (under the tensor's own name) where anything else
  reads a blocked tensor or a graph output is blocked. Pairs of inverse transforms cancel.

The block of a tensor depends on its channel count and the target's vector width only
(``channel_block``: with AVX-512's 16 float32 lanes, 32, 16 or 8 when they divide it,
else its largest divisor up to 16), so the output of one convolution is the input of the
next without a transform; no channel is ever padded. The example below is for AVX-512.

Before::

    graph g(x: float32[1, 3, 8, 8]):
      w = constant float32[16, 3, 3, 3]
      b = constant float32[16]
      c = Conv(x, w, b) {pads=[1, 1, 1, 1]} : float32[1, 16, 8, 8]
      r = Relu(c) : float32[1, 16, 8, 8]
      p = MaxPool(r) {kernel_shape=[2, 2], strides=[2, 2]} : float32[1, 16, 4, 4]
      y = Flatten(p) : float32[1, 256]
      return y

After::

    graph g(x: float32[1, 3, 8, 8]):
      w_nchwc = constant float32[1, 1, 3, 3, 3, 16]
      b_nchwc = constant float32[1, 1, 1, 1, 16]
      c_nchw16c = Conv2dNCHWc(x, w_nchwc, b_nchwc) {dilations=[1, 1], pads=[1, 1, 1, 1], strides=[1, 1]} : float32[1, 1, 8, 8, 16]
      r_nchw16c = Relu(c_nchw16c) : float32[1, 1, 8, 8, 16]
      p_nchw16c = MaxPoolNCHWc(r_nchw16c) {kernel_shape=[2, 2], strides=[2, 2]} : float32[1, 1, 4, 4, 16]
      p = LayoutTransform(p_nchw16c) {channels=16, dst_layout='NCHW', src_layout='NCHW16c'} : float32[1, 16, 4, 4]
      y = Flatten(p) : float32[1, 256]
      return y
"""

from __future__ import annotations

from dlc.graph.ir import Graph, Node, TensorType
from dlc.graph.passes.rewrite import (
    Namer,
    constant,
    node_reads,
    prune_types,
    rename_everywhere,
    resolve,
    use_counts,
)
from dlc.ops import registry
from dlc.ops.layout import (
    blocked_layout,
    np_to_blocked,
    pack_channel_vector,
    pack_conv_weights,
    pack_depthwise_weights,
    parse_layout,
)
from dlc.target import Target

#: Ops that run unchanged on blocked tensors: elementwise, with NumPy broadcasting.
ELEMENTWISE = frozenset({
    "Abs", "Add", "Ceil", "Celu", "Clip", "Cos", "Div", "Elu", "Erf", "Exp", "Floor", "Gelu",
    "HardSigmoid", "HardSwish", "Identity", "LeakyRelu", "Log", "Max", "Mean", "Min", "Mish",
    "Mul", "Neg", "Pow", "PRelu", "Reciprocal", "Relu", "Round", "Selu", "Sigmoid", "Sign",
    "Sin", "Softplus", "Softsign", "Sqrt", "Sub", "Sum", "Tanh", "ThresholdedRelu"})
#: Pools with a blocked variant.
POOLS = {"MaxPool": "MaxPoolNCHWc", "AveragePool": "AveragePoolNCHWc",
         "GlobalAveragePool": "GlobalAveragePoolNCHWc"}


def channel_block(channels: int, lanes: int) -> int:
    """The block size of a tensor with ``channels`` channels on vectors of ``lanes``
    float32: two, one or half a vector (32, 16 or 8 with AVX-512) when one divides it, else
    its largest divisor up to a vector."""
    for block in (2 * lanes, lanes, lanes // 2):
        if block and channels % block == 0:
            return block
    return max(d for d in range(1, min(channels, lanes) + 1) if channels % d == 0)


def alter_conv_layout(graph: Graph, target: Target | str | None = None) -> Graph:
    """Move convolution chains to blocked layouts (see the module docstring); ``graph``
    itself when no convolution qualifies."""
    rw = _Rewriter(graph, Target.parse(target).hardware.lanes("float32"))
    for node in graph.nodes:
        if not rw.convert(node):
            rw.keep(node)
    if not rw.changed:
        return graph
    return rw.finish()


class _Rewriter:
    def __init__(self, graph: Graph, lanes: int):
        self.graph = graph
        self.lanes = lanes
        self.out = graph.copy()
        self.nodes: list = []
        self.namer = Namer(graph)
        self.blocked: dict = {}  # original tensor -> (its blocked tensor, block)
        self.plain: set = set()  # blocked tensors whose NCHW form exists again
        self.memo: dict = {}  # (tensor, block) -> blocked copy made by a transform
        self.readers = graph.consumers()
        self.wanted: dict = {}  # tensor -> whether a reader would run blocked
        self.changed = False

    # -- emitting -------------------------------------------------------------------------
    def emit(self, op: str, inputs, attrs: dict, name: str, output: str) -> str:
        """Append a node, typing its output by inference."""
        opdef = registry.get(op)
        in_types = [self.out.types[x] if x else None for x in inputs]
        in_values = [constant(self.out, x) for x in inputs]
        ctx = registry.make_context(opdef, name, attrs, in_types, in_values)
        self.out.types[output] = registry.infer_node(opdef, ctx)[0]
        self.nodes.append(Node(op, tuple(inputs), (output,), attrs, name))
        return output

    def add_constant(self, base: str, value) -> str:
        name = self.namer.fresh(base)
        self.out.constants[name] = value
        self.out.types[name] = TensorType.of(value)
        return name

    def transform(self, x: str, src: int | None, dst: int | None, channels: int,
                  output: str) -> str:
        attrs = {"channels": channels, "dst_layout": blocked_layout(dst),
                 "src_layout": blocked_layout(src)}
        return self.emit("LayoutTransform", [x], attrs, f"{output}_transform", output)

    def as_blocked(self, x: str, block: int) -> str:
        """Tensor ``x`` in layout NCHW{block}c (adding a transform if needed)."""
        if x in self.blocked and self.blocked[x][1] == block:
            return self.blocked[x][0]
        if (x, block) not in self.memo:
            channels = self.out.types[x].shape[1] if x not in self.blocked else \
                self.graph.types[x].shape[1]
            source, src = self.blocked.get(x, (x, None))
            name = self.namer.fresh(f"{x}_nchw{block}c")
            self.memo[(x, block)] = self.transform(source, src, block, channels, name)
        return self.memo[(x, block)]

    def need_plain(self, x: str) -> None:
        """Make the NCHW form of ``x`` exist (under its own name)."""
        if x in self.blocked and x not in self.plain:
            self.plain.add(x)
            source, block = self.blocked[x]
            self.transform(source, block, None, self.graph.types[x].shape[1], x)

    def keep(self, node: Node) -> None:
        for x in sorted(node_reads(node)):
            self.need_plain(x)
        self.nodes.append(node)

    def emit_blocked(self, node: Node, op: str, inputs, attrs: dict, block: int) -> None:
        y = node.outputs[0]
        yb = self.namer.fresh(f"{y}_nchw{block}c")
        self.emit(op, inputs, attrs, node.name, yb)
        self.blocked[y] = (yb, block)
        self.changed = True

    # -- conversions ----------------------------------------------------------------------
    def convert(self, node: Node) -> bool:
        if node.op == "Conv":
            return self.conv(node)
        if node.op in POOLS:
            return self.pool(node)
        if node.op in ELEMENTWISE:
            return self.elementwise(node)
        return False

    def conv_geometry(self, node: Node):
        """(channels, out channels, depthwise, window) of a Conv this pass rewrites, or
        None."""
        if node.op != "Conv" or len(node.outputs) != 1:
            return None
        x, w, b = (list(node.inputs) + ["", ""])[:3]
        xt = self.graph.types.get(x)
        wv, bv = constant(self.graph, w), constant(self.graph, b) if b else None
        if xt is None or xt.dtype != "float32" or xt.ndim != 4 or wv is None or \
                (b and bv is None) or constant(self.graph, x) is not None:
            return None
        conv = registry.get("Conv")
        types = [xt, self.graph.types[w]] + ([self.graph.types[b]] if b else [])
        ctx = registry.make_context(conv, node.name, node.attrs, types,
                                    [None, wv] + ([bv] if b else []))
        _, channels, out_channels, group, win = conv.geometry(ctx)
        depthwise = group > 1 and group == channels == out_channels
        if group != 1 and not depthwise:
            return None
        return channels, out_channels, depthwise, win

    def conv(self, node: Node) -> bool:
        geometry = self.conv_geometry(node)
        if geometry is None:
            return False
        channels, out_channels, depthwise, win = geometry
        x, w, b = (list(node.inputs) + ["", ""])[:3]
        wv, bv = constant(self.graph, w), constant(self.graph, b) if b else None
        ic_bn = channel_block(channels, self.lanes)
        oc_bn = channel_block(out_channels, self.lanes)
        # a plain input is read directly (or blocked by the padded copy the kernel makes)
        inputs = [self.blocked[x][0] if x in self.blocked and self.blocked[x][1] == ic_bn
                  else self.as_blocked(x, ic_bn) if x in self.blocked else x]
        if depthwise:
            inputs.append(self.add_constant(f"{w}_nchwc", pack_depthwise_weights(wv, ic_bn)))
        else:
            inputs.append(self.add_constant(f"{w}_nchwc", pack_conv_weights(wv, ic_bn, oc_bn)))
        if bv is not None:
            inputs.append(self.add_constant(f"{b}_nchwc", pack_channel_vector(bv, oc_bn)))
        attrs = {"dilations": list(win.dilations), "pads": [*win.pads_begin, *win.pads_end],
                 "strides": list(win.strides)}
        op = "DepthwiseConv2dNCHWc" if depthwise else "Conv2dNCHWc"
        if self.wants_blocked(node.outputs[0]):
            self.emit_blocked(node, op, inputs, attrs, oc_bn)
        else:  # nothing after it runs blocked: write NCHW straight from the registers
            self.emit(op, inputs, {**attrs, "out_layout": "NCHW"}, node.name, node.outputs[0])
            self.changed = True
        return True

    def wants_blocked(self, y: str) -> bool:
        """Whether a reader of ``y`` (in the source graph) would run blocked: a Conv this
        pass rewrites, a pool, or an elementwise op whose result is wanted blocked."""
        if y not in self.wanted:
            self.wanted[y] = False  # (no cycles in a graph; guards the recursion anyway)
            shape = self.graph.types[y].shape if y in self.graph.types else None
            for reader in self.readers.get(y, []):
                if reader.inputs[0] == y and (
                        (reader.op in POOLS and not any(reader.outputs[1:])) or
                        self.conv_geometry(reader) is not None):
                    self.wanted[y] = True
                elif reader.op in ELEMENTWISE and len(reader.outputs) == 1 and \
                        self.graph.types.get(reader.outputs[0], None) is not None and \
                        self.graph.types[reader.outputs[0]].shape == shape and \
                        self.wants_blocked(reader.outputs[0]):
                    self.wanted[y] = True
                if self.wanted[y]:
                    break
        return self.wanted[y]

    def pool(self, node: Node) -> bool:
        x = node.inputs[0]
        if x not in self.blocked or any(node.outputs[1:]) or \
                self.graph.types[x].dtype != "float32":
            return False
        attrs = {k: v for k, v in node.attrs.items() if k != "storage_order"}
        source, block = self.blocked[x]
        self.emit_blocked(node.with_(outputs=node.outputs[:1]), POOLS[node.op], [source],
                          attrs, block)
        return True

    def elementwise(self, node: Node) -> bool:
        """Run ``node`` on blocked tensors when one of its inputs is blocked and every
        other input is blocked too, a one-element tensor, a constant that broadcasts per
        channel (repacked), or a plain tensor with the same channels (transformed)."""
        yt = self.graph.types.get(node.outputs[0]) if len(node.outputs) == 1 else None
        full = [x for x in node.inputs if x in self.blocked
                and self.graph.types[x].shape == getattr(yt, "shape", None)]
        if yt is None or yt.ndim != 4 or not full:
            return False
        block, channels = self.blocked[full[0]][1], yt.shape[1]
        plan = []
        for x in node.inputs:
            t = self.graph.types.get(x) if x else None
            value = constant(self.graph, x)
            if not x or (t is not None and t.size == 1 and t.ndim <= 5):
                plan.append(("keep", x))
            elif x in self.blocked:
                if self.blocked[x][1] != block:
                    return False
                plan.append(("keep", self.blocked[x][0]))
            elif value is not None:
                packed = _pack_constant(value, channels, block)
                if packed is None:
                    return False
                plan.append(("constant", (x, packed)))
            elif t is not None and t.ndim == 4 and t.shape[1] == channels:
                plan.append(("transform", x))
            else:
                return False
        inputs = []
        for kind, what in plan:
            if kind == "keep":
                inputs.append(what)
            elif kind == "transform":
                inputs.append(self.as_blocked(what, block))
            else:
                key = (what[0], block)
                if key not in self.memo:
                    self.memo[key] = self.add_constant(f"{what[0]}_nchw{block}c", what[1])
                inputs.append(self.memo[key])
        self.emit_blocked(node, node.op, inputs, dict(node.attrs), block)
        return True

    # -- the result -----------------------------------------------------------------------
    def finish(self) -> Graph:
        for y in self.graph.outputs:
            self.need_plain(y)
        out = self.out
        out.nodes = cancel_inverse_transforms(self.nodes, out.outputs)
        used = use_counts(out)
        out.constants = {k: v for k, v in out.constants.items()
                         if used.get(k) or k in out.inputs}
        prune_types(out)
        return out


def cancel_inverse_transforms(nodes: list, outputs) -> list:
    """Drop ``LayoutTransform(LayoutTransform(x, A -> B), B -> A)`` (readers read ``x``),
    then transforms nothing reads."""
    producer = {o: n for n in nodes for o in n.outputs if o}
    mapping = {}
    for node in nodes:
        first = producer.get(node.inputs[0]) if node.op == "LayoutTransform" else None
        if first is None or first.op != "LayoutTransform" or node.outputs[0] in outputs:
            continue
        if _inverse(first.attrs, node.attrs):
            mapping[node.outputs[0]] = first.inputs[0]
    if not mapping:
        return nodes
    kept = [n for n in nodes if n.outputs[0] not in mapping]
    kept = rename_everywhere(kept, {k: resolve(mapping, v) for k, v in mapping.items()})
    live = set(outputs)
    result = []
    for node in reversed(kept):
        if node.op == "LayoutTransform" and node.outputs[0] not in live:
            continue
        live |= node_reads(node)
        result.append(node)
    return result[::-1]


def _inverse(a: dict, b: dict) -> bool:
    """Whether transform ``b`` undoes transform ``a`` (no block holds padding channels)."""
    if a["src_layout"] != b["dst_layout"] or a["dst_layout"] != b["src_layout"]:
        return False
    channels = a.get("channels", 0)
    blocks = [parse_layout(a["src_layout"]), parse_layout(a["dst_layout"])]
    return channels > 0 and channels == b.get("channels", 0) and \
        all(blk is None or channels % blk == 0 for blk in blocks)


def _pack_constant(value, channels: int, block: int):
    """A constant that broadcasts against ``[N, channels, H, W]``, reshaped to broadcast
    the same way against the blocked ``[N, channels / block, H, W, block]``; None when it
    does not broadcast per channel."""
    if value.ndim > 4:
        return None
    v = value.reshape((1,) * (4 - value.ndim) + value.shape)
    if v.shape[1] == 1:
        return v.reshape(*v.shape, 1)
    if v.shape[1] != channels:
        return None
    return np_to_blocked(v, block)
