"""The Schedule API: primitives that shape the loop nests of tensor expressions.

A Schedule holds one Stage per compute. Primitives change stages (never the tensors the
user built) and are recorded in ``Schedule.trace``, which replays to the same loop nest.
``dlc.lower(sch)`` turns a schedule into loop IR; ``dlc.build(sch)`` into native code.
"""

from __future__ import annotations

import contextlib
import operator

from dlc.errors import ScheduleError
from dlc.te.tensor import ComputeOp, PlaceholderOp, Tensor
from dlc.tir.schedule import dataflow
from dlc.tir.schedule.stage import Attach, Fuse, LoopVar, Split, Stage, check_width
from dlc.tir.schedule.trace import Trace
from dlc.tir.stmt import ForKind

SCOPES = ("global", "shared", "local")
THREAD_TAGS = ("blockIdx.x", "blockIdx.y", "blockIdx.z", "threadIdx.x", "threadIdx.y",
               "threadIdx.z", "vthread")


class Loop:
    """A handle to one loop of a stage, as returned by ``get_loops``, ``split``, ..."""

    def __init__(self, sch: Schedule, stage: str, name: str):
        self._sch, self.stage, self.name = sch, stage, name

    @property
    def extent(self) -> int:
        """Nominal trip count (from the tensor's full shape)."""
        return self._sch._resolve(self)[1].extent

    @property
    def kind(self) -> ForKind:
        return self._sch._resolve(self)[1].kind

    def __repr__(self) -> str:
        return f"Loop({self.stage}.{self.name})"


class Schedule:
    """How to compute a function whose arguments are ``args`` (inputs, then outputs)."""

    def __init__(self, args, name: str = "main"):
        args = list(args)
        if not args or not all(isinstance(t, Tensor) for t in args):
            raise ScheduleError("Schedule takes the list of the function's argument tensors "
                                "(te.placeholder inputs, then te.compute outputs)")
        self.name = name
        self.trace = Trace()
        self._recording = True
        self._names: dict[int, str] = {}  # id(op) -> unique name
        self._keep: list = []  # keeps ops alive so their ids stay unique
        self.stages: dict[str, Stage] = {}
        self.placeholders: dict[str, PlaceholderOp] = {}
        self._collect(args)
        self.args = [self._names[id(t.op)] for t in args]
        if len(set(self.args)) != len(self.args):
            raise ScheduleError("a tensor appears twice in the argument list")
        self._check_args()

    # -- construction ---------------------------------------------------------------------
    def _register(self, op, wanted: str) -> str:
        if id(op) in self._names:
            return self._names[id(op)]
        taken = set(self._names.values())
        name, k = wanted, 1
        while name in taken:
            name, k = f"{wanted}_{k}", k + 1
        self._names[id(op)] = name
        self._keep.append(op)
        return name

    def _collect(self, args) -> None:
        outputs = {id(t.op) for t in args if isinstance(t.op, ComputeOp)}
        order: list = []
        seen: set = set()

        def visit(op):
            if id(op) in seen:
                return
            seen.add(id(op))
            for t in op.inputs:
                visit(t.op)
            order.append(op)

        for t in args:
            visit(t.op)
        for op in order:
            name = self._register(op, op.name)
            if isinstance(op, PlaceholderOp):
                self.placeholders[name] = op
            elif isinstance(op, ComputeOp):
                renamed = op if name == op.name else _renamed(op, name)
                self._names[id(renamed)] = name
                self._keep.append(renamed)
                self.stages[name] = Stage.create(renamed, id(op) in outputs)
            else:
                raise ScheduleError(f"unknown operation {op!r}")

    def _check_args(self) -> None:
        for name in self.placeholders:
            if name not in self.args:
                raise ScheduleError(f"placeholder {name} is read by the computation but is not "
                                    "in the argument list; pass it to Schedule([...])")

    def tensor_name(self, t) -> str:
        """The schedule's name of a tensor (names are made unique per schedule)."""
        if isinstance(t, str):
            if t in self.stages or t in self.placeholders:
                return t
            raise ScheduleError(f"no tensor named {t!r} in this schedule; tensors: "
                                + ", ".join(list(self.placeholders) + list(self.stages)))
        if isinstance(t, Tensor):
            name = self._names.get(id(t.op))
            if name is None:
                raise ScheduleError(f"tensor {t.name} is not part of this schedule")
            return name
        raise ScheduleError(f"expected a tensor or tensor name, got {t!r}")

    def _stage(self, t) -> Stage:
        name = self.tensor_name(t)
        if name in self.placeholders:
            raise ScheduleError(f"{name} is a placeholder (an input): it has no loops to "
                                "schedule")
        return self.stages[name]

    def _resolve(self, loop: Loop) -> tuple[Stage, LoopVar]:
        if not isinstance(loop, Loop):
            raise ScheduleError(f"expected a Loop (from get_loops/split/...), got {loop!r}")
        if loop._sch is not self:
            raise ScheduleError(f"loop {loop.stage}.{loop.name} belongs to another schedule")
        stage = self.stages.get(loop.stage)
        if stage is None:
            raise ScheduleError(f"loop {loop.stage}.{loop.name}: no stage {loop.stage}")
        lv = stage.find(loop.name)
        if lv is None:
            reason = stage.retired.get(loop.name, "no such loop")
            raise ScheduleError(f"loop {loop.stage}.{loop.name} no longer exists: {reason}; "
                                "use the loops returned by the last primitive")
        return stage, lv

    def _record(self, record: dict) -> None:
        if self._recording:
            self.trace.append(record)

    @contextlib.contextmanager
    def _quiet(self):
        previous, self._recording = self._recording, False
        try:
            yield
        finally:
            self._recording = previous

    def _attached_at(self, stage: Stage, loop: LoopVar) -> list[Stage]:
        return [s for s in self.stages.values()
                if s.attach.kind == "at" and s.attach.stage == stage.name
                and s.attach.loop == loop.name]

    # -- queries ----------------------------------------------------------------------------
    def get_loops(self, t) -> list[Loop]:
        """The loops of a tensor's stage, outermost first."""
        stage = self._stage(t)
        return [Loop(self, stage.name, lv.name) for lv in stage.leaves]

    def loop(self, stage: str, name: str) -> Loop:
        """The loop called ``name`` of stage ``stage`` (used to replay traces)."""
        st = self._stage(stage)
        if st.find(name) is None:
            reason = st.retired.get(name, "no such loop")
            raise ScheduleError(f"loop {stage}.{name} does not exist: {reason}; loops are "
                                + ", ".join(lv.name for lv in st.leaves))
        return Loop(self, st.name, name)

    def tensor(self, name: str) -> Tensor:
        """The current tensor called ``name`` (e.g. one made by cache_read)."""
        name = self.tensor_name(name)
        if name in self.placeholders:
            return Tensor(self.placeholders[name])
        return Tensor(self.stages[name].op)

    def __getitem__(self, t) -> Stage:
        return self._stage(t)

    @classmethod
    def from_trace(cls, args, trace: Trace | str, name: str = "main") -> Schedule:
        """A new schedule of ``args`` with the primitives of ``trace`` applied."""
        if isinstance(trace, str):
            trace = Trace.from_json(trace)
        sch = cls(args, name)
        trace.apply(sch)
        return sch

    # -- loop primitives --------------------------------------------------------------------
    def split(self, loop: Loop, factor: int | None = None, nparts: int | None = None):
        """Split a loop into (outer, inner); ``factor`` is the inner trip count, ``nparts``
        the outer one. Non-divisible splits are guarded and partitioned when lowered.

        Before ``split(i, factor=4)`` on ``for i in range(10)``::

            for i.outer in range(3):
              for i.inner in range(4):
                if likely(i.outer * 4 + i.inner < 10): body
        """
        stage, lv = self._resolve(loop)
        if (factor is None) == (nparts is None):
            raise ScheduleError(f"split {stage.name}.{lv.name}: give exactly one of factor= "
                                "or nparts=")
        amount = _integer(factor if factor is not None else nparts)
        if amount is None:
            raise ScheduleError(f"split {stage.name}.{lv.name}: factor/nparts must be an "
                                f"integer, got {factor if factor is not None else nparts!r}")
        if factor is not None:
            factor = amount
        else:
            nparts = amount
        if amount < 1:
            raise ScheduleError(f"split {stage.name}.{lv.name}: "
                                f"{'factor' if factor is not None else 'nparts'}={amount} "
                                "must be at least 1")
        self._check_plain(stage, lv, "split")
        if factor is not None:
            outer_ext, inner_ext = -(-lv.extent // factor), factor
        else:
            outer_ext, inner_ext = nparts, -(-lv.extent // nparts)
        outer = LoopVar(stage.unique_name(lv.name + ".outer"), outer_ext, lv.is_reduce)
        inner = LoopVar(stage.unique_name(lv.name + ".inner"), inner_ext, lv.is_reduce)
        stage.relations.append(Split(lv, outer, inner, factor, nparts))
        pos = stage.leaves.index(lv)
        stage.leaves[pos:pos + 1] = [outer, inner]
        stage.retired[lv.name] = f"it was split into {outer.name} and {inner.name}"
        for other in self._attached_at(stage, lv):
            other.attach = Attach("at", stage.name, inner.name)
        self._record({"primitive": "split", "stage": stage.name, "loop": lv.name,
                      "factor": factor, "nparts": nparts})
        return Loop(self, stage.name, outer.name), Loop(self, stage.name, inner.name)

    def tile(self, x: Loop, y: Loop, x_factor: int, y_factor: int):
        """Split two adjacent loops and reorder to (x.outer, y.outer, x.inner, y.inner)."""
        sx, lx = self._resolve(x)
        sy, ly = self._resolve(y)
        if sx is not sy:
            raise ScheduleError(f"tile: loops {x} and {y} belong to different stages")
        with self._quiet():
            xo, xi = self.split(x, factor=x_factor)
            yo, yi = self.split(y, factor=y_factor)
            self.reorder(xo, yo, xi, yi)
        self._record({"primitive": "tile", "stage": sx.name, "x": lx.name, "y": ly.name,
                      "x_factor": _integer(x_factor), "y_factor": _integer(y_factor)})
        return xo, yo, xi, yi

    def fuse(self, *loops: Loop) -> Loop:
        """Fuse adjacent loops (outermost first) into one.

        Before ``fuse(i, j)``: ``for i in range(4): for j in range(8): body(i, j)``;
        after: ``for i.j.fused in range(32): body(i.j.fused // 8, i.j.fused % 8)``.
        """
        if len(loops) == 1 and isinstance(loops[0], (list, tuple)):
            loops = tuple(loops[0])
        if not loops:
            raise ScheduleError("fuse needs at least one loop")
        resolved = [self._resolve(lp) for lp in loops]
        stage = resolved[0][0]
        if any(s is not stage for s, _ in resolved):
            raise ScheduleError("fuse: all loops must belong to the same stage")
        lvs = [lv for _, lv in resolved]
        if len(lvs) == 1:
            return loops[0]
        positions = [stage.leaves.index(lv) for lv in lvs]
        if positions != list(range(positions[0], positions[0] + len(lvs))):
            names = ", ".join(lv.name for lv in lvs)
            order = ", ".join(lv.name for lv in stage.leaves)
            raise ScheduleError(f"fuse {stage.name}: loops {names} are not adjacent and in "
                                f"order (current order: {order}); reorder them first")
        if len({lv.is_reduce for lv in lvs}) != 1:
            raise ScheduleError(f"fuse {stage.name}: cannot fuse a reduction loop with a "
                                "spatial loop")
        for lv in lvs:
            self._check_plain(stage, lv, "fuse")
        for lv in lvs[:-1]:
            attached = self._attached_at(stage, lv)
            if attached:
                raise ScheduleError(f"fuse {stage.name}: {attached[0].name} is computed at loop "
                                    f"{lv.name}, between the loops to fuse; fuse before "
                                    "compute_at")
        current = lvs[0]
        for lv in lvs[1:]:
            name = stage.unique_name(f"{_base(current.name)}.{lv.name}.fused")
            fused = LoopVar(name, current.extent * lv.extent, lv.is_reduce)
            stage.relations.append(Fuse(current, lv, fused))
            pos = stage.leaves.index(current)
            stage.leaves[pos:pos + 2] = [fused]
            for old in (current, lv):
                stage.retired[old.name] = f"it was fused into {fused.name}"
            current = fused
        for other in self._attached_at(stage, lvs[-1]):
            other.attach = Attach("at", stage.name, current.name)
        self._record({"primitive": "fuse", "stage": stage.name,
                      "loops": [lv.name for lv in lvs]})
        return Loop(self, stage.name, current.name)

    def reorder(self, *loops: Loop) -> None:
        """Put the given loops, in the order given, at the positions they occupy together.

        Before ``reorder(j, i)``: ``for i: for j: body``; after: ``for j: for i: body``.
        """
        if len(loops) == 1 and isinstance(loops[0], (list, tuple)):
            loops = tuple(loops[0])
        resolved = [self._resolve(lp) for lp in loops]
        if not resolved:
            return
        stage = resolved[0][0]
        if any(s is not stage for s, _ in resolved):
            raise ScheduleError("reorder: all loops must belong to the same stage")
        lvs = [lv for _, lv in resolved]
        if len({id(lv) for lv in lvs}) != len(lvs):
            raise ScheduleError(f"reorder {stage.name}: a loop is listed twice")
        positions = sorted(stage.leaves.index(lv) for lv in lvs)
        new_leaves = list(stage.leaves)
        for pos, lv in zip(positions, lvs):
            new_leaves[pos] = lv
        for lv in stage.leaves:
            for other in self._attached_at(stage, lv):
                before = {id(x) for x in stage.leaves[:stage.leaves.index(lv) + 1]}
                after = {id(x) for x in new_leaves[:new_leaves.index(lv) + 1]}
                if before != after:
                    raise ScheduleError(
                        f"reorder {stage.name}: {other.name} is computed at loop {lv.name}, so "
                        f"the loops around it are not perfectly nested; this reorder would move "
                        f"loops across it. Reorder before compute_at, or compute {other.name} "
                        "at another loop")
        stage.leaves = new_leaves
        self._record({"primitive": "reorder", "stage": stage.name,
                      "loops": [lv.name for lv in lvs]})

    def _check_plain(self, stage: Stage, lv: LoopVar, what: str) -> None:
        if lv.kind is not ForKind.SERIAL:
            raise ScheduleError(f"{what} {stage.name}.{lv.name}: the loop is already "
                                f"{lv.kind.value}; apply {what} before annotating loops")

    def _annotate(self, loop: Loop, kind: ForKind, what: str, thread: str | None = None):
        stage, lv = self._resolve(loop)
        if lv.kind is kind and lv.thread_tag == thread:
            return stage, lv
        if lv.kind is not ForKind.SERIAL:
            raise ScheduleError(f"{what} {stage.name}.{lv.name}: the loop is already "
                                f"{lv.kind.value}")
        lv.kind, lv.thread_tag = kind, thread
        return stage, lv

    def vectorize(self, loop: Loop) -> None:
        """Run the iterations of a loop as SIMD lanes.

        ``for j in range(16): C[j] = A[j] + B[j]`` becomes one vector statement
        ``C[ramp(0, 1, 16)] = A[ramp(0, 1, 16)] + B[ramp(0, 1, 16)]`` when built.

        At most MAX_VECTOR_LANES lanes. The loops of an output stage keep their extents,
        so a longer one is refused here. Any other stage may be computed at a consumer's
        loop (by compute_at, before or after this call), which shrinks its loops to the
        region one iteration needs, so its lanes are checked when lowering, once bound
        inference knows them: a 1024-column loop computed at a 32-column tile has 32.
        """
        stage, lv = self._resolve(loop)
        if lv.is_reduce:
            raise ScheduleError(
                f"vectorize {stage.name}.{lv.name}: it is a reduction loop, so each iteration "
                f"depends on the previous one through {stage.name} (a loop-carried "
                "dependency); vectorize a spatial loop, or rfactor the reduction first")
        if stage.is_output:
            check_width(ForKind.VECTORIZED, stage.name, lv.name, lv.extent)
        pos = stage.leaves.index(lv)
        for k, other in enumerate(stage.leaves):
            if other is not lv and other.kind is ForKind.VECTORIZED:
                raise ScheduleError(f"vectorize {stage.name}.{lv.name}: loop {other.name} of the "
                                    "same stage is already vectorized; nested vectorized loops "
                                    "are not supported (fuse them and vectorize the fused loop)")
            if k > pos and other.kind is ForKind.PARALLEL:
                raise ScheduleError(f"vectorize {stage.name}.{lv.name}: it contains the parallel "
                                    f"loop {other.name}; vectorize an inner loop instead")
        self._annotate(loop, ForKind.VECTORIZED, "vectorize")
        self._record({"primitive": "vectorize", "stage": stage.name, "loop": lv.name})

    def unroll(self, loop: Loop) -> None:
        """Replicate the body of a loop once per iteration.

        At most MAX_UNROLL iterations, checked here for an output stage and when lowering
        for the others (whose loops compute_at may shrink), as for ``vectorize``.
        """
        stage, lv = self._resolve(loop)
        if stage.is_output:
            check_width(ForKind.UNROLLED, stage.name, lv.name, lv.extent)
        self._annotate(loop, ForKind.UNROLLED, "unroll")
        self._record({"primitive": "unroll", "stage": stage.name, "loop": lv.name})

    def parallel(self, loop: Loop) -> None:
        """Run the iterations of a loop on the thread pool."""
        stage, lv = self._resolve(loop)
        if lv.is_reduce:
            raise ScheduleError(
                f"parallel {stage.name}.{lv.name}: it is a reduction loop; threads would race "
                f"on {stage.name} (a loop-carried dependency); parallelize a spatial loop, or "
                "rfactor the reduction first")
        pos = stage.leaves.index(lv)
        for k, other in enumerate(stage.leaves):
            if other is not lv and other.kind is ForKind.PARALLEL:
                raise ScheduleError(f"parallel {stage.name}.{lv.name}: loop {other.name} of "
                                    "the same stage is already parallel; nested parallel "
                                    "loops are not supported (fuse them instead)")
            if k < pos and other.kind is ForKind.VECTORIZED:
                raise ScheduleError(f"parallel {stage.name}.{lv.name}: it is inside the "
                                    f"vectorized loop {other.name}; a vector lane cannot start "
                                    "threads. Parallelize a loop outside it")
        self._annotate(loop, ForKind.PARALLEL, "parallel")
        self._record({"primitive": "parallel", "stage": stage.name, "loop": lv.name})

    def bind(self, loop: Loop, thread: str) -> None:
        """Bind a loop to a GPU thread index (``blockIdx.x``, ``threadIdx.x``, ...)."""
        stage, lv = self._resolve(loop)
        if thread not in THREAD_TAGS:
            raise ScheduleError(f"bind {stage.name}.{lv.name}: unknown thread index {thread!r}; "
                                f"expected one of {', '.join(THREAD_TAGS)}")
        if lv.is_reduce:
            raise ScheduleError(f"bind {stage.name}.{lv.name}: binding a reduction loop to "
                                "threads needs a cross-thread reduction; rfactor it first")
        for other in stage.leaves:
            if other is not lv and other.thread_tag == thread:
                raise ScheduleError(f"bind {stage.name}.{lv.name}: {thread} is already bound to "
                                    f"loop {other.name}")
        self._annotate(loop, ForKind.THREAD_BINDING, "bind", thread)
        self._record({"primitive": "bind", "stage": stage.name, "loop": lv.name,
                      "thread": thread})

    # -- placement primitives ----------------------------------------------------------------
    def _producers(self, stage: Stage) -> set:
        """Names of all stages and placeholders ``stage`` depends on, transitively."""
        found: set = set()
        todo = [stage.op]
        while todo:
            op = todo.pop()
            for t in op.inputs:
                name = self._names.get(id(t.op))
                if name is None or name in found:
                    continue
                found.add(name)
                if name in self.stages:
                    todo.append(self.stages[name].op)
        return found

    def compute_at(self, t, loop: Loop) -> None:
        """Compute tensor ``t`` inside ``loop`` of one of its consumers, only the region
        that one iteration of the loop needs.

        Before ``compute_at(B, C.i)``: ``for i: B[i] = ...`` then ``for i: C[i] = f(B[i])``;
        after: ``for i: (B[0] = ...; C[i] = f(B[0]))`` with B shrunk to that region.
        """
        stage = self._stage(t)
        target, lv = self._resolve(loop)
        if stage.is_output:
            raise ScheduleError(f"compute_at {stage.name}: it is an output of the function, so "
                                "its whole buffer must be computed at root")
        if target is stage:
            raise ScheduleError(f"compute_at {stage.name}: cannot compute a stage inside its "
                                "own loop")
        if stage.name not in self._producers(target):
            raise ScheduleError(f"compute_at {stage.name} at {target.name}.{lv.name}: "
                                f"{target.name} does not read {stage.name}; compute a tensor "
                                "at a loop of one of its consumers")
        anchor = target
        while anchor.attach.kind == "at":
            if anchor.attach.stage == stage.name:
                raise ScheduleError(f"compute_at {stage.name}: {target.name} is itself computed "
                                    f"inside {stage.name}; that would be a cycle")
            anchor = self.stages[anchor.attach.stage]
        stage.attach = Attach("at", target.name, lv.name)
        self._record({"primitive": "compute_at", "stage": stage.name, "target": target.name,
                      "loop": lv.name})

    def compute_inline(self, t) -> None:
        """Substitute an elementwise tensor into its consumers instead of storing it."""
        stage = self._stage(t)
        if stage.is_output:
            raise ScheduleError(f"compute_inline {stage.name}: it is an output of the function "
                                "and must be stored")
        if stage.op.reduce_axes:
            raise ScheduleError(f"compute_inline {stage.name}: it is a reduction; only "
                                "elementwise computes can be inlined")
        for other in self.stages.values():
            if other.attach.kind == "at" and other.attach.stage == stage.name:
                raise ScheduleError(f"compute_inline {stage.name}: {other.name} is computed at "
                                    f"one of its loops; compute_root({other.name}) first")
        stage.attach = Attach("inline")
        self._record({"primitive": "compute_inline", "stage": stage.name})

    def compute_root(self, t) -> None:
        """Compute a tensor entirely, at the top level of the function (the default)."""
        stage = self._stage(t)
        stage.attach = Attach("root")
        self._record({"primitive": "compute_root", "stage": stage.name})

    # -- dataflow primitives --------------------------------------------------------------
    def _new_stage(self, op, scope: str) -> Tensor:
        name = self._register(op, op.name)
        if name != op.name:
            op = _renamed(op, name)
            self._names[id(op)] = name
            self._keep.append(op)
        self.stages[name] = Stage.create(op, False, scope)
        return Tensor(op)

    def _replace_op(self, stage: Stage, op: ComputeOp) -> None:
        self._names[id(op)] = stage.name
        self._keep.append(op)
        stage.op = op

    def _check_scope(self, what: str, scope: str) -> None:
        if scope not in SCOPES:
            raise ScheduleError(f"{what}: unknown memory scope {scope!r}; expected one of "
                                f"{', '.join(SCOPES)}")

    def cache_read(self, t, scope: str, readers) -> Tensor:
        """Copy tensor ``t`` into a new buffer of ``scope`` that ``readers`` read instead."""
        name = self.tensor_name(t)
        self._check_scope(f"cache_read {name}", scope)
        if not isinstance(readers, (list, tuple)):
            readers = [readers]
        reader_stages = [self._stage(r) for r in readers]
        if not reader_stages:
            raise ScheduleError(f"cache_read {name}: give at least one reader")
        source = self.tensor(name)
        axis_names = ([a.name for a in self.stages[name].op.axes] if name in self.stages
                      else [f"ax{d}" for d in range(len(source.shape))])
        cache_op = dataflow.copy_op(f"{name}.{scope}", source, axis_names)
        for stage in reader_stages:
            if name not in {self._names.get(id(x.op)) for x in stage.op.inputs}:
                raise ScheduleError(f"cache_read {name}: {stage.name} does not read {name}")
        cache = self._new_stage(cache_op, scope)
        for stage in reader_stages:
            new_op, _ = dataflow.replace_reads(stage.op, self._name_of_tensor, name, cache)
            self._replace_op(stage, new_op)
        self._record({"primitive": "cache_read", "stage": name, "scope": scope,
                      "readers": [s.name for s in reader_stages]})
        return cache

    def cache_write(self, t, scope: str) -> Tensor:
        """Compute ``t`` into a new buffer of ``scope`` and copy it to ``t`` afterwards;
        returns the new tensor, which takes over the original computation."""
        stage = self._stage(t)
        self._check_scope(f"cache_write {stage.name}", scope)
        if stage.relations or any(lv.kind is not ForKind.SERIAL for lv in stage.leaves) \
                or any(s.attach.stage == stage.name for s in self.stages.values()):
            raise ScheduleError(f"cache_write {stage.name}: apply cache_write before any other "
                                f"primitive on {stage.name}")
        if stage.attach.kind == "inline":
            raise ScheduleError(f"cache_write {stage.name}: the stage is inlined")
        cache_op, new_op = dataflow.split_for_cache_write(stage.op, f"{stage.name}.{scope}")
        cache = self._new_stage(cache_op, scope)
        if cache.op is not cache_op:  # renamed: point the copy at the renamed op
            new_op, _ = dataflow.replace_reads(new_op, lambda x: x.name, cache_op.name, cache)
        self._replace_op(stage, new_op)
        stage.reset_loops()
        self._record({"primitive": "cache_write", "stage": stage.name, "scope": scope})
        return cache

    def rfactor(self, t, loop: Loop, factor_axis: int = 0) -> Tensor:
        """Turn the reduction loop ``loop`` (split from a reduction axis) into a spatial
        axis of a new tensor of partial results; ``t`` then reduces those. The schedule of
        ``t`` is reset."""
        stage = self._stage(t)
        target, lv = self._resolve(loop)
        if target is not stage:
            raise ScheduleError(f"rfactor {stage.name}: loop {loop} belongs to {target.name}")
        if any(s.attach.stage == stage.name for s in self.stages.values()):
            raise ScheduleError(f"rfactor {stage.name}: stages are computed at its loops; "
                                "compute_root them first")
        if _integer(factor_axis) is None:
            raise ScheduleError(f"rfactor {stage.name}: factor_axis must be an integer, got "
                                f"{factor_axis!r}")
        factor_axis = _integer(factor_axis)
        rf_op, final_op = dataflow.rfactor_ops(stage, lv, factor_axis, f"{stage.name}.rf")
        rf = self._new_stage(rf_op, "global")
        if rf.op is not rf_op:
            final_op, _ = dataflow.replace_reads(final_op, lambda x: x.name, rf_op.name, rf)
        self._replace_op(stage, final_op)
        stage.reset_loops()
        self._record({"primitive": "rfactor", "stage": stage.name, "loop": lv.name,
                      "factor_axis": factor_axis})
        return rf

    def _name_of_tensor(self, t: Tensor) -> str | None:
        return self._names.get(id(t.op))

    # -- order ----------------------------------------------------------------------------
    def stage_order(self) -> list[Stage]:
        """Stages with producers before consumers."""
        order: list[Stage] = []
        seen: set = set()

        def visit(name):
            if name in seen or name not in self.stages:
                return
            seen.add(name)
            for t in self.stages[name].op.inputs:
                visit(self._names.get(id(t.op)))
            order.append(self.stages[name])

        for name in self.args:
            visit(name)
        return order

    def __repr__(self) -> str:
        return f"Schedule({self.name}, args={self.args}, {len(self.trace)} primitives)"


def _integer(value) -> int | None:
    """``value`` as a Python int when it is an integer (NumPy ints too, bools not)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _renamed(op: ComputeOp, name: str) -> ComputeOp:
    return ComputeOp(name, op.axes, op.body, op.tag, op.attrs)


def _base(name: str) -> str:
    return name[:-len(".fused")] if name.endswith(".fused") else name
