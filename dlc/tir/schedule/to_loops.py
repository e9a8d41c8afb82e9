"""Turn a Schedule into loop IR: inline, infer bounds, and emit each stage's loop nest at
the place the schedule chose (root, or inside a loop of a consumer)."""

from __future__ import annotations

from dlc import dtypes
from dlc.errors import ScheduleError
from dlc.expr import nodes as n
from dlc.expr.functor import ExprMutator, post_order, substitute
from dlc.expr.simplify import simplify
from dlc.te.expr_api import identity_of
from dlc.tir import stmt as s
from dlc.tir.schedule import bound
from dlc.tir.schedule.bound import SymInterval
from dlc.tir.schedule.stage import check_width

_INDEX = dtypes.INDEX_DTYPE


def schedule_to_loops(sch) -> s.PrimFunc:
    """Lower a Schedule to a PrimFunc whose parameters are the schedule's arguments."""
    return _Lowerer(sch).run()


class _Lowerer:
    def __init__(self, sch):
        self.sch = sch
        self.order = [st for st in sch.stage_order()]
        self.live = [st for st in self.order if st.attach.kind != "inline"]
        self.params: dict[str, n.Buffer] = {}
        for name in sch.args:
            if name in sch.placeholders:
                op = sch.placeholders[name]
            else:
                op = sch.stages[name].op
            self.params[name] = n.Buffer(name, op.shape, op.dtype)
        self.buffers: dict[str, n.Buffer] = dict(self.params)
        self.regions: dict[str, list] = {}
        self.clip: dict[str, list] = {}
        self.ext: dict[str, dict] = {}
        self.ranges: dict = {}
        self.effective: dict[str, n.Expr] = {}

    # -- inlining ---------------------------------------------------------------------------
    def name_of(self, tensor) -> str:
        name = self.sch._names.get(id(tensor.op))
        if name is None:  # pragma: no cover - schedules only hold registered tensors
            raise ScheduleError(f"tensor {tensor.name} is not part of the schedule")
        return name

    def effective_body(self, stage) -> n.Expr:
        if stage.name not in self.effective:
            lowerer = self

            class _Inline(ExprMutator):
                def visit_TensorRead(self, e):
                    e = self.generic_visit(e)
                    name = lowerer.name_of(e.tensor)
                    other = lowerer.sch.stages.get(name)
                    if other is None or other.attach.kind != "inline":
                        return e
                    body = lowerer.effective_body(other)
                    return substitute(body, dict(zip(other.op.axes, e.indices)))

            self.effective[stage.name] = _Inline().visit(stage.op.body)
        return self.effective[stage.name]

    def reads_of(self, expr) -> list[n.TensorRead]:
        found = []
        post_order(expr, lambda e: found.append(e) if isinstance(e, n.TensorRead) else None)
        return found

    # -- bounds ----------------------------------------------------------------------------
    def infer_bounds(self) -> None:
        consumers: dict[str, set] = {st.name: set() for st in self.live}
        for st in self.live:
            for read in self.reads_of(self.effective_body(st)):
                name = self.name_of(read.tensor)
                if name in consumers:
                    consumers[name].add(st.name)
        for st in reversed(self.live):
            if st.attach.kind == "at":
                self.regions[st.name] = self.attached_region(st, consumers[st.name])
            else:
                self.regions[st.name] = [(n.Const(0, _INDEX), ext) for ext in st.op.shape]
                self.clip[st.name] = [False] * len(st.op.shape)
            roots = {}
            spatial = list(st.op.axes)
            for lv in st.roots:
                axis = st.root_axis[id(lv)]
                if axis in spatial:
                    roots[id(lv)] = self.regions[st.name][spatial.index(axis)][1]
                else:
                    roots[id(lv)] = lv.extent
            self.ext[st.name] = bound.leaf_extents(st, roots)
            for lv in st.leaves:
                self.ranges[lv.var] = (0, self.ext[st.name][id(lv)])

    def attached_region(self, st, consumers: set) -> list:
        target = self.sch.stages[st.attach.stage]
        if target.attach.kind == "inline":
            raise ScheduleError(f"{st.name} is computed at {target.name}.{st.attach.loop}, but "
                                f"{target.name} is inlined; compute it elsewhere")
        # readers computed at the same loop (after st) read it there too
        siblings = sorted(c for c in consumers - {target.name}
                          if self.sch.stages[c].attach == st.attach)
        others = sorted(consumers - {target.name} - set(siblings))
        if others:
            raise ScheduleError(f"{st.name} is computed at {target.name}.{st.attach.loop} but is "
                                f"also read by {', '.join(others)}, which is not computed inside "
                                f"that loop; compute_at a loop that encloses all its readers")
        leaf = target.find(st.attach.loop)
        position = target.leaves.index(leaf)
        ext = self.ext[target.name]
        intervals = bound.root_intervals(target, ext, position + 1)
        var_iv, var_ranges = {}, {}
        spatial = list(target.op.axes)
        for lv in target.roots:
            axis = target.root_axis[id(lv)]
            iv = intervals[id(lv)]
            if axis in spatial:
                lo = self.regions[target.name][spatial.index(axis)][0]
                iv = SymInterval(simplify(n.Add(lo, iv.base)), iv.lo, iv.hi)
            var_iv[axis] = iv
            var_ranges[axis] = (0, axis.extent)
        shape = self.sch.stages[st.name].op.shape
        dims: list = [False] * len(shape)
        readers = [(target, var_iv, var_ranges)]
        readers += [self.sibling_intervals(self.sch.stages[c]) for c in siblings]
        for reader, ivs, rngs in readers:
            for read in self.reads_of(self.effective_body(reader)):
                if self.name_of(read.tensor) != st.name:
                    continue
                for d, idx in enumerate(read.indices):
                    if dims[d] is None:
                        continue
                    iv = bound.index_interval(idx, ivs, rngs, self.ranges)
                    dims[d] = iv if dims[d] is False else bound.union(dims[d], iv, self.ranges)
        region, clip = [], []
        for d, iv in enumerate(dims):
            if iv is None or iv is False or iv.hi - iv.lo + 1 >= shape[d]:
                region.append((n.Const(0, _INDEX), shape[d]))
                clip.append(False)
                continue
            lo = simplify(n.Add(iv.base, n.Const(iv.lo, _INDEX)))
            extent = iv.hi - iv.lo + 1
            region.append((lo, extent))
            nlo, nhi = iv.numeric(self.ranges)
            clip.append(nlo is None or nhi is None or nlo < 0 or nhi > shape[d] - 1)
        self.clip[st.name] = clip
        return region

    def sibling_intervals(self, stage) -> tuple:
        """(stage, intervals of its axes, their ranges) for a stage computed at the same
        loop as one it reads: its whole region, and its full reduction axes."""
        ivs, rngs = {}, {}
        for axis, (lo, ext) in zip(stage.op.axes, self.regions[stage.name]):
            ivs[axis] = SymInterval(lo, 0, ext - 1)
            rngs[axis] = (0, axis.extent)
        for axis in stage.op.reduce_axes:
            ivs[axis] = SymInterval.const(0, axis.extent - 1)
            rngs[axis] = (0, axis.extent)
        return stage, ivs, rngs

    def check_widths(self) -> None:
        """Refuse vectorized and unrolled loops that are too long, now that their extents
        are known: ``vectorize`` and ``unroll`` check only output stages, because compute_at
        shrinks the loops of the others to the region of the loop they are computed at."""
        for st in self.live:
            if st.attach.kind == "at":
                known = f" (its extent with {st.name} computed at {st.attach.stage}." \
                        f"{st.attach.loop})"
            else:
                known = f" (its extent with {st.name} computed at root)"
            for lv in st.leaves:
                check_width(lv.kind, st.name, lv.name, self.ext[st.name][id(lv)], known)

    # -- statements ------------------------------------------------------------------------
    def lower_reads(self, expr):
        lowerer = self

        class _Reads(ExprMutator):
            def visit_TensorRead(self, e):
                e = self.generic_visit(e)
                name = lowerer.name_of(e.tensor)
                buf = lowerer.buffers[name]
                region = lowerer.regions.get(name)
                if region is None or name in lowerer.params:
                    return n.BufferLoad(buf, e.indices)
                idx = tuple(simplify(n.Sub(i, lo)) for i, (lo, _) in zip(e.indices, region))
                return n.BufferLoad(buf, idx)

        return _Reads().visit(expr)

    def stage_body(self, st) -> s.Stmt:
        """The loop nest of one stage (without its allocation)."""
        ext = self.ext[st.name]
        leaf_values = {id(lv): lv.var for lv in st.leaves}
        values = bound.root_values(st, leaf_values, ext)
        guards = bound.split_guards(st, values, ext)
        region = self.regions[st.name]
        spatial = list(st.op.axes)
        mapping, rel_index = {}, [None] * len(spatial)
        for lv in st.roots:
            axis = st.root_axis[id(lv)]
            if axis in spatial:
                d = spatial.index(axis)
                rel_index[d] = values[id(lv)]
                mapping[axis] = n.Add(region[d][0], values[id(lv)])
                if self.clip[st.name][d]:
                    guards.append((False, n.GE(mapping[axis], n.Const(0, _INDEX))))
                    guards.append((False, n.LT(mapping[axis], n.Const(st.op.shape[d], _INDEX))))
            else:
                mapping[axis] = values[id(lv)]
        mapping = {k: simplify(v) for k, v in mapping.items()}
        index = tuple(simplify(v) for v in rel_index)
        buf = self.buffers[st.name]
        body = self.effective_body(st)
        if isinstance(body, n.Reduce):
            return self.reduce_nest(st, body, mapping, index, guards)
        value = self.lower_reads(substitute(body, mapping))
        store = s.BufferStore(buf, value, index)
        return self.loops(st, 0, _guard(store, [g for _, g in guards]), None)

    def reduce_nest(self, st, body: n.Reduce, mapping, index, guards) -> s.Stmt:
        buf = self.buffers[st.name]
        source = self.lower_reads(substitute(body.source, mapping))
        acc = n.BufferLoad(buf, index)
        combined = {"sum": n.Add, "prod": n.Mul, "max": n.Max, "min": n.Min}[body.combiner](
            acc, source)
        update: s.Stmt = s.BufferStore(buf, combined, index)
        if body.condition is not None:
            cond = self.lower_reads(substitute(body.condition, mapping))
            update = s.IfThenElse(cond, update)
        update = _guard(update, [g for _, g in guards])
        first = next(k for k, lv in enumerate(st.leaves) if lv.is_reduce)
        fresh = {}
        for lv in st.leaves[first:]:
            if not lv.is_reduce:
                fresh[lv.var] = n.Var(lv.var.name, _INDEX)
        identity = n.const(identity_of(body.combiner, buf.dtype), buf.dtype)
        init_index = tuple(simplify(substitute(i, fresh)) for i in index)
        init: s.Stmt = s.BufferStore(buf, identity, init_index)
        init = _guard(init, [substitute(g, fresh) for is_red, g in guards if not is_red])
        ext = self.ext[st.name]
        # A parallel loop keeps its kind in the init unless the init would be nested in
        # another parallel loop (an enclosing leaf, or the consumer loop it is attached to).
        nested = st.attach.kind != "root" or any(
            lv.kind is s.ForKind.PARALLEL for lv in st.leaves[:first])
        for lv in reversed(st.leaves[first:]):
            if not lv.is_reduce:
                kind = lv.kind
                if kind is s.ForKind.PARALLEL and nested:
                    kind = s.ForKind.SERIAL
                init = s.For(fresh[lv.var], n.Const(0, _INDEX), n.Const(ext[id(lv)], _INDEX),
                             kind, init, lv.thread_tag)
        return self.loops(st, 0, update, (first, init))

    def loops(self, st, pos: int, innermost: s.Stmt, init) -> s.Stmt:
        if pos == len(st.leaves):
            return innermost
        inner = self.loops(st, pos + 1, innermost, init)
        if init is not None and init[0] == pos + 1:
            inner = s.seq(init[1], inner)
        lv = st.leaves[pos]
        inner = self.attach_block(st, lv, inner)
        loop = s.For(lv.var, n.Const(0, _INDEX), n.Const(self.ext[st.name][id(lv)], _INDEX),
                     lv.kind, inner, lv.thread_tag)
        if pos == 0 and init is not None and init[0] == 0:
            return s.seq(init[1], loop)
        return loop

    def attach_block(self, st, lv, inner: s.Stmt) -> s.Stmt:
        producers = [p for p in self.live if p.attach.kind == "at"
                     and p.attach.stage == st.name and p.attach.loop == lv.name]
        for p in reversed(producers):
            inner = s.Allocate(self.buffers[p.name], s.seq(self.stage_body(p), inner))
        return inner

    def run(self) -> s.PrimFunc:
        for st in self.live:
            self.effective_body(st)
        self.infer_bounds()
        self.check_widths()
        for st in self.live:
            if st.name not in self.buffers:
                shape = tuple(ext for _, ext in self.regions[st.name])
                self.buffers[st.name] = n.Buffer(st.name, shape, st.op.dtype, st.scope)
        body = s.seq(*[self.stage_body(st) for st in self.live if st.attach.kind == "root"])
        for st in reversed(self.live):
            if st.attach.kind == "root" and st.name not in self.params:
                body = s.Allocate(self.buffers[st.name], body)
        func = s.PrimFunc(self.sch.name, tuple(self.params[a] for a in self.sch.args), body)
        _check_nested_parallel(func.body)
        return func


def _guard(stmt: s.Stmt, conds: list) -> s.Stmt:
    for cond in reversed(conds):
        stmt = s.IfThenElse(simplify(cond), stmt, None, likely=True)
    return stmt


def _check_nested_parallel(body: s.Stmt) -> None:
    def visit(node, outer):
        if isinstance(node, s.For):
            if node.kind is s.ForKind.PARALLEL:
                if outer is not None:
                    raise ScheduleError(f"parallel loop {node.var.name} is nested inside parallel "
                                        f"loop {outer}; nested parallelism is not supported")
                outer = node.var.name
            visit(node.body, outer)
        elif isinstance(node, s.SeqStmt):
            for c in node.stmts:
                visit(c, outer)
        elif isinstance(node, (s.Allocate, s.LetStmt)):
            visit(node.body, outer)
        elif isinstance(node, s.IfThenElse):
            visit(node.then_case, outer)
            if node.else_case is not None:
                visit(node.else_case, outer)

    visit(body, None)
