"""Rewrites of the tensor-expression graph used by cache_read, cache_write and rfactor."""

from __future__ import annotations

from dlc import dtypes
from dlc.errors import ScheduleError
from dlc.expr import nodes as n
from dlc.expr.functor import ExprMutator, substitute
from dlc.te.tensor import ComputeOp, IterVar, Tensor
from dlc.tir.schedule.stage import Fuse, Split, Stage


class _ReplaceReads(ExprMutator):
    def __init__(self, resolve, old_name: str, new_tensor: Tensor):
        self.resolve, self.old_name, self.new_tensor = resolve, old_name, new_tensor
        self.count = 0

    def visit_TensorRead(self, e):
        e = self.generic_visit(e)
        if self.resolve(e.tensor) == self.old_name:
            self.count += 1
            return n.TensorRead(self.new_tensor, e.indices)
        return e


def replace_reads(op: ComputeOp, resolve, old_name: str, new_tensor: Tensor):
    """A copy of ``op`` reading ``new_tensor`` wherever it read the tensor ``old_name``;
    returns (new op, number of reads replaced). Axes are kept, so loops stay valid."""
    mutator = _ReplaceReads(resolve, old_name, new_tensor)
    body = mutator.visit(op.body)
    return ComputeOp(op.name, op.axes, body, op.tag, op.attrs), mutator.count


def fresh_axes(names, shape) -> tuple:
    return tuple(IterVar(nm, dtypes.INDEX_DTYPE, 1, ext, "spatial")
                 for nm, ext in zip(names, shape))


def copy_op(name: str, tensor: Tensor, axis_names) -> ComputeOp:
    """``name[i...] = tensor[i...]``."""
    axes = fresh_axes(axis_names, tensor.shape)
    return ComputeOp(name, axes, n.TensorRead(tensor, tuple(axes)))


def split_for_cache_write(op: ComputeOp, cache_name: str):
    """Move the body of ``op`` into a new op ``cache_name``; return (cache op, new op for
    the original tensor that copies from the cache)."""
    axes = fresh_axes([a.name for a in op.axes], op.shape)
    body = substitute(op.body, dict(zip(op.axes, axes)))
    if isinstance(op.body, n.Reduce):  # substitute does not enter Reduce.axes; keep them
        body = n.Reduce(op.body.combiner, body.source, op.body.axes, body.condition)
    cache_op = ComputeOp(cache_name, axes, body, op.tag, op.attrs)
    cache_tensor = Tensor(cache_op)
    new_op = ComputeOp(op.name, op.axes, n.TensorRead(cache_tensor, tuple(op.axes)),
                       op.tag, op.attrs)
    return cache_op, new_op


def rfactor_ops(stage: Stage, loop, factor_axis: int, rf_name: str):
    """Split the reduction of ``stage`` at ``loop`` (a loop derived from one reduce axis by
    splits): return (rf op computing partial results, new op reducing them)."""
    op = stage.op
    body = op.body
    if not isinstance(body, n.Reduce):
        raise ScheduleError(f"rfactor: {stage.name} is not a reduction")
    if not loop.is_reduce:
        raise ScheduleError(f"rfactor: loop {stage.name}.{loop.name} is not a reduction loop")
    root = _root_of(stage, loop)
    if root is None:
        raise ScheduleError(f"rfactor: loop {stage.name}.{loop.name} is a fused loop; rfactor "
                            "needs a reduction loop or a loop obtained by splitting one")
    # leaves derived from this root, in leaf order
    derived = [lv for lv in stage.leaves if _root_of(stage, lv) is root]
    for rel in stage.relations:
        if isinstance(rel, Fuse) and (_root_of(stage, rel.outer) is root
                                      or _root_of(stage, rel.inner) is root):
            raise ScheduleError(f"rfactor: loop {loop.name} comes from a fused loop; rfactor "
                                "needs a loop obtained by splitting a reduction axis")
    root_axis = stage.root_axis[id(root)]
    new_spatial = IterVar(loop.name, dtypes.INDEX_DTYPE, 1, loop.extent, "spatial")
    new_reduce = {id(lv): IterVar(lv.name, dtypes.INDEX_DTYPE, 1, lv.extent, "reduce")
                  for lv in derived if lv is not loop}
    value = {id(loop): new_spatial}
    for lv in derived:
        if lv is not loop:
            value[id(lv)] = new_reduce[id(lv)]
    bounds = []  # every split that overshoots its parent needs ``parent < extent``
    for rel in reversed(stage.relations):
        if isinstance(rel, Split) and id(rel.outer) in value and id(rel.inner) in value:
            value[id(rel.parent)] = value[id(rel.outer)] * rel.inner.extent + value[id(rel.inner)]
            if rel.outer.extent * rel.inner.extent > rel.parent.extent:
                bounds.insert(0, value[id(rel.parent)] < rel.parent.extent)
    if id(root) not in value:
        raise ScheduleError(f"rfactor: cannot express axis {root.name} from loop {loop.name}")
    root_value = value[id(root)]
    cond = None
    for bound in bounds:
        cond = bound if cond is None else n.And(cond, bound)
    if factor_axis < 0 or factor_axis > len(op.axes):
        raise ScheduleError(f"rfactor: factor_axis={factor_axis} is out of range "
                            f"0..{len(op.axes)}")
    spatial = fresh_axes([a.name for a in op.axes], op.shape)
    mapping = dict(zip(op.axes, spatial))
    mapping[root_axis] = root_value
    source = substitute(body.source, mapping)
    condition = substitute(body.condition, mapping) if body.condition is not None else None
    if cond is not None:
        # the where-condition may read the reduced tensor: evaluate it only in bounds (a
        # Select's branches are guarded; both operands of an And would be read)
        condition = cond if condition is None else \
            n.Select(cond, condition, n.const(False, "bool"))
    other_axes = [a for a in body.axes if a is not root_axis]
    reduce_axes = tuple(new_reduce[id(lv)] for lv in derived if lv is not loop) \
        + tuple(other_axes)
    rf_axes = list(spatial)
    rf_axes.insert(factor_axis, new_spatial)
    if reduce_axes:
        rf_body = n.Reduce(body.combiner, source, reduce_axes, condition)
    else:
        from dlc.te.expr_api import identity_of

        rf_body = source if condition is None else n.Select(
            condition, source, n.const(identity_of(body.combiner, source.dtype), source.dtype))
    rf_op = ComputeOp(rf_name, rf_axes, rf_body, op.tag, op.attrs)
    rf_tensor = Tensor(rf_op)
    k = IterVar(loop.name, dtypes.INDEX_DTYPE, 1, loop.extent, "reduce")
    idx = list(op.axes)
    idx.insert(factor_axis, k)
    final = ComputeOp(op.name, op.axes,
                      n.Reduce(body.combiner, n.TensorRead(rf_tensor, tuple(idx)), (k,)),
                      op.tag, op.attrs)
    return rf_op, final


def _root_of(stage: Stage, loop):
    """The root LoopVar a loop derives from (through splits; fused loops have none)."""
    current = loop
    changed = True
    while changed:
        changed = False
        for rel in stage.relations:
            if isinstance(rel, Split) and (rel.outer is current or rel.inner is current):
                current = rel.parent
                changed = True
                break
            if isinstance(rel, Fuse) and rel.fused is current:
                return None
    return current
