"""Lower one graph node to a kernel: tensor expressions from the op library, the op's
default schedule, then loop IR."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dlc import te
from dlc.errors import DlcError, InternalError
from dlc.graph.ir import Graph, Node
from dlc.ops import registry
from dlc.target import Target
from dlc.tir import stmt as s
from dlc.tir.flops import count_flops
from dlc.tir.lower import lower
from dlc.tir.schedule import Schedule
from dlc.tir.schedule.to_loops import schedule_to_loops


@dataclass
class Kernel:
    """A lowered kernel and the graph tensors bound to its parameters, in order."""

    name: str
    func: s.PrimFunc
    args: list  # graph tensor names, inputs then outputs
    node: str = ""  # the graph node it computes
    tuned: bool = False  # whether its schedule came from a tuning record
    flops: int | None = None  # floating-point operations of one call (algorithm_flops)


def lower_graph(graph: Graph, target=None, tuning: dict | None = None,
                progress=None) -> list[Kernel]:
    """One kernel per node of ``graph`` (nodes whose outputs are all empty need none),
    scheduled by the tuning records of ``tuning`` where it has one, else by default.
    ``progress(done, total, what)`` is called as kernels are lowered. The one loop from a
    graph to kernels: compile, inspect and the tuner call it."""
    kernels = []
    for k, node in enumerate(graph.nodes):
        if progress:
            progress(k, len(graph.nodes), "lowering kernels")
        if all(not out or graph.types[out].size == 0 for out in node.outputs):
            continue  # empty outputs need no code
        kname = f"k{k}_{ident(node.name or node.op)}"
        try:
            kernels.append(node_kernel(graph, node, kname, tuning, target))
        except DlcError as err:
            raise type(err)(f"while compiling node {node.name!r} ({node.op}): {err}") \
                from None
        except Exception as err:  # noqa: BLE001 - a compiler bug, reported as such
            raise InternalError(f"while compiling node {node.name!r} ({node.op}): "
                                f"{type(err).__name__}: {err}") from err
    if progress:
        progress(len(graph.nodes), len(graph.nodes), "lowering kernels")
    untuned = [k.name for k in kernels if not k.tuned]
    if tuning is not None and untuned:
        import warnings

        from dlc.errors import DlcWarning

        shown = ", ".join(untuned[:8]) + (f", ... ({len(untuned) - 8} more)"
                                          if len(untuned) > 8 else "")
        warnings.warn(f"{len(untuned)} of {len(kernels)} kernels have no tuning record for "
                      f"this target and use the default schedule ({shown})", DlcWarning,
                      stacklevel=2)
    return kernels


def ident(name: str) -> str:
    """A C-friendly identifier for a tensor or node name."""
    text = re.sub(r"[^0-9A-Za-z_]", "_", name)
    return text if text and not text[0].isdigit() else "t" + text


def node_context(graph: Graph, node: Node, target=None) -> registry.OpContext:
    op = registry.get(node.op)
    in_types = [graph.types[x] if x else None for x in node.inputs]
    in_values = [graph.constants.get(x) if x else None for x in node.inputs]
    ctx = registry.make_context(op, node.name, node.attrs, in_types, in_values)
    ctx.target = Target.parse(target)
    registry.infer_node(op, ctx)
    return ctx


@dataclass
class KernelCompute:
    """What a node's kernel computes, before any schedule: its tensor expressions."""

    args: list       # placeholders of the inputs it reads, then its output tensors
    arg_names: list  # the graph tensors bound to ``args``
    outputs: list    # the output tensors
    family: str      # the schedule family (a fused group's: its anchor's)
    anchor: object   # the tensor of the op whose family it is (None: the first output)


def kernel_compute(graph: Graph, node: Node, target=None) -> KernelCompute:
    """The tensor expressions computing ``node`` for ``target`` (default: the host CPU)."""
    op = registry.get(node.op)
    ctx = node_context(graph, node, target)
    placeholders = []
    for k, x in enumerate(node.inputs):
        if not x or k in op.value_inputs:
            placeholders.append(None)
            continue
        t = graph.types[x]
        placeholders.append(te.placeholder(t.shape, t.dtype, name=ident(x)))
    outs = list(op.compute(ctx, *placeholders))
    for o, nm in zip(outs, node.outputs):
        if nm and o is None and graph.types[nm].size:
            raise DlcError(f"{node.op} compute produced no tensor for output {nm!r}")
    # outputs not requested, and empty ones (None), need no code
    kept = [(o, nm) for o, nm in zip(outs, node.outputs) if nm and o is not None
            and graph.types[nm].size]
    real_outputs = [o for o, _ in kept]
    if any(isinstance(o.op, te.PlaceholderOp) for o in real_outputs):
        raise DlcError(f"{node.op} compute returned an input unchanged; it must compute a "
                       "new tensor")
    used = _reachable_placeholders(real_outputs)
    in_args = [(x, p) for x, p in zip(node.inputs, placeholders)
               if p is not None and id(p.op) in used]
    return KernelCompute([p for _, p in in_args] + real_outputs,
                         [x for x, _ in in_args] + [nm for _, nm in kept], real_outputs,
                         getattr(ctx, "anchor_schedule", op.schedule),
                         getattr(ctx, "anchor_tensor", None))


def node_kernel(graph: Graph, node: Node, name: str, tuning: dict | None = None,
                target=None) -> Kernel:
    """Build, schedule and lower the kernel computing ``node`` for ``target`` (default:
    the host CPU); a tuning record for its task (``tuning``: task key -> record, see
    dlc.autotune.task) replaces the default schedule."""
    from dlc.schedules import apply_schedule, default_config

    target = Target.parse(target)
    comp = kernel_compute(graph, node, target)
    sch = Schedule(comp.args, name=name)
    record = None
    if tuning:
        from dlc.autotune.task import computation_key

        record = tuning.get(computation_key(comp))
    if record is not None and not _apply_record(record, sch, comp, target, node):
        record, sch = None, Schedule(comp.args, name=name)  # the template's default
    if record is None:
        apply_schedule(comp.family, sch, comp.outputs, comp.anchor, default_config(target))
    return Kernel(name, lower(sch), comp.arg_names, node.name, record is not None,
                  algorithm_flops(comp.args))


def _apply_record(record: dict, sch: Schedule, comp: KernelCompute, target, node: Node):
    """Schedule ``sch`` with the configuration of a tuning record (through the template,
    so tensor names do not matter); False (with a warning) when its configuration no
    longer fits the template."""
    import warnings

    from dlc.autotune.space import FixedConfig
    from dlc.errors import DlcWarning, ScheduleError
    from dlc.schedules import apply_schedule

    config = record.get("config") or {}
    cfg = FixedConfig(config, target)
    try:
        apply_schedule(comp.family, sch, comp.outputs, comp.anchor, cfg)
        cfg.space.check(dict(cfg.space.default(), **config))
    except ScheduleError as err:
        warnings.warn(f"tuning record {record.get('_line', '')} does not fit template "
                      f"{comp.family!r} of node {node.name!r} ({err}); it keeps the default "
                      "schedule (retune with this dlc)", DlcWarning, stacklevel=4)
        return False
    return True


def algorithm_flops(args) -> int | None:
    """Floating-point operations of the tensor expressions computing ``args`` (placeholders
    and outputs): counted on their unscheduled loop nest, so the count is the algorithm's,
    the same whatever the schedule pads or recomputes (dlc.tir.flops). None if that loop
    nest cannot be built or has a loop without a bounded extent."""
    try:
        return count_flops(schedule_to_loops(Schedule(args)))
    except DlcError:
        return None


def _reachable_placeholders(outputs) -> set:
    seen, found = set(), set()
    todo = [o.op for o in outputs]
    while todo:
        op = todo.pop()
        if id(op) in seen:
            continue
        seen.add(id(op))
        if isinstance(op, te.PlaceholderOp):
            found.add(id(op))
        else:
            todo.extend(t.op for t in op.inputs)
    return found
