"""FusedGroup: several nodes compiled as one kernel (made by the fuse_ops graph pass).

The node's ``body`` attribute is a typed Graph of the member nodes; its inputs are the
group's inputs (constants among them also appear in ``body.constants`` so that members
see values they need at compile time); its outputs are the tensors read outside the group.
``anchor`` names the output of the member whose schedule shapes the kernel (a
convolution, a matmul, a reduction; for elementwise chains, the last member).
"""

from __future__ import annotations

from dlc.graph.interpreter import run_graph
from dlc.ops.registry import OPAQUE, REQUIRED, OpDef, get, infer_node, make_context, register


@register
class FusedGroup(OpDef):
    name = "FusedGroup"
    pattern = OPAQUE
    attrs = {"body": REQUIRED, "anchor": REQUIRED}
    num_inputs = (0, None)
    num_outputs = (1, None)

    def infer(self, ctx):
        body = ctx.attrs["body"]
        for name, t in zip(body.inputs, ctx.in_types):
            if t is not None and body.types.get(name) != t:
                raise ctx.error(f"input {name} has type {t}, the group expects "
                                f"{body.types.get(name)}")
        return [body.types[o] for o in body.outputs]

    def reference(self, ctx, *arrays):
        body = ctx.attrs["body"]
        return run_graph(body, dict(zip(body.inputs, arrays)))

    def member_context(self, body, node, target=None):
        op = get(node.op)
        in_types = [body.types[x] if x else None for x in node.inputs]
        in_values = [body.constants.get(x) if x else None for x in node.inputs]
        mctx = make_context(op, node.name, node.attrs, in_types, in_values)
        mctx.target = target
        infer_node(op, mctx)
        return op, mctx

    def compute(self, ctx, *inputs):
        body = ctx.attrs["body"]
        env = {name: t for name, t in zip(body.inputs, inputs) if t is not None}
        anchor_op = None
        for node in body.nodes:
            op, mctx = self.member_context(body, node, ctx.target)
            args = [env.get(x) if x and k not in op.value_inputs else None
                    for k, x in enumerate(node.inputs)]
            outs = op.compute(mctx, *args)
            for name, tensor in zip(node.outputs, outs):
                if name and tensor is not None:
                    env[name] = tensor
            if ctx.attrs["anchor"] in node.outputs:
                anchor_op = op
        ctx.anchor_tensor = env[ctx.attrs["anchor"]]
        ctx.anchor_schedule = anchor_op.schedule if anchor_op is not None else "generic"
        return [env.get(o) for o in body.outputs]  # None: an empty output (no code)
