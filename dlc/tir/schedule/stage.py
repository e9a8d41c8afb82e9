"""A Stage is the schedule state of one compute: its loops, how they derive from the
compute's axes (split and fuse relations), their kinds, and where the stage is computed."""

from __future__ import annotations

from dataclasses import dataclass, field

from dlc import dtypes
from dlc.errors import ScheduleError
from dlc.expr import nodes as n
from dlc.tir.stmt import ForKind

#: The longest loops ``vectorize`` (lanes) and ``unroll`` (copies of the body) accept.
MAX_VECTOR_LANES = 512
MAX_UNROLL = 512


class LoopVar:
    """One loop of a stage: a root axis of the compute or one derived by split/fuse."""

    def __init__(self, name: str, extent: int, is_reduce: bool):
        self.name = name
        self.extent = extent  # nominal extent, from the full shape of the compute
        self.is_reduce = is_reduce
        self.var = n.Var(name, dtypes.INDEX_DTYPE)
        self.kind = ForKind.SERIAL
        self.thread_tag: str | None = None

    def __repr__(self) -> str:
        return f"LoopVar({self.name}, {self.extent})"


@dataclass
class Split:
    parent: LoopVar
    outer: LoopVar
    inner: LoopVar
    factor: int | None
    nparts: int | None


@dataclass
class Fuse:
    outer: LoopVar
    inner: LoopVar
    fused: LoopVar


@dataclass
class Attach:
    """Where a stage is computed: "root", "inline", or "at" a loop of another stage."""

    kind: str = "root"
    stage: str | None = None
    loop: str | None = None


@dataclass
class Stage:
    name: str
    op: object  # dlc.te.ComputeOp
    is_output: bool
    scope: str = "global"
    roots: list = field(default_factory=list)  # LoopVars of the axes, then reduce axes
    root_axis: dict = field(default_factory=dict)  # id(LoopVar) -> IterVar of the op
    relations: list = field(default_factory=list)
    leaves: list = field(default_factory=list)
    attach: Attach = field(default_factory=Attach)
    retired: dict = field(default_factory=dict)  # loop name -> why it no longer exists

    @staticmethod
    def create(op, is_output: bool, scope: str = "global") -> Stage:
        stage = Stage(op.name, op, is_output, scope)
        stage.reset_loops()
        return stage

    def reset_loops(self) -> None:
        """Forget every loop transformation: one loop per axis, in axis order."""
        self.roots, self.root_axis, self.relations = [], {}, []
        for axis in list(self.op.axes) + list(self.op.reduce_axes):
            loop = LoopVar(axis.name, axis.extent, axis.kind == "reduce")
            self.roots.append(loop)
            self.root_axis[id(loop)] = axis
        self.leaves = list(self.roots)
        self.retired = {}

    def find(self, name: str) -> LoopVar | None:
        for loop in self.leaves:
            if loop.name == name:
                return loop
        return None

    def all_names(self) -> set:
        names = {loop.name for loop in self.roots}
        for rel in self.relations:
            if isinstance(rel, Split):
                names.update((rel.outer.name, rel.inner.name))
            else:
                names.add(rel.fused.name)
        return names

    def unique_name(self, wanted: str) -> str:
        taken = self.all_names()
        if wanted not in taken:
            return wanted
        k = 1
        while f"{wanted}{k}" in taken:
            k += 1
        return f"{wanted}{k}"


def check_width(kind: ForKind, stage: str, loop: str, extent: int, known: str = "") -> None:
    """Refuse a vectorized loop of more than MAX_VECTOR_LANES iterations, or an unrolled
    one of more than MAX_UNROLL; ``known`` says how ``extent`` became known."""
    if kind is ForKind.VECTORIZED:
        what, limit, unit = "vectorize", MAX_VECTOR_LANES, "lanes"
    elif kind is ForKind.UNROLLED:
        what, limit, unit = "unroll", MAX_UNROLL, "iterations"
    else:
        return
    if extent > limit:
        raise ScheduleError(f"{what} {stage}.{loop}: {extent} {unit}{known} is more than "
                            f"{limit}; split the loop and {what} the inner part")
