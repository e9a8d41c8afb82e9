"""Features of a candidate's loop IR for the cost model.

``extract(func)`` reads a lowered PrimFunc (the readable loop IR of ``dlc.lower``, before
unrolling and vectorization) and returns a fixed-length float vector. Every statement
that stores to a buffer gets ``STORE_FEATURES`` from its enclosing loops and the
expressions it evaluates; the vector holds those of the heaviest store (most iterations x
work), their mean over all stores weighted by the same measure, then ``GLOBAL_FEATURES``
of the whole function. ``FEATURE_NAMES`` names every entry.

The features are meant to transfer between tasks: counts and sizes are log2-scaled
(``log2(1 + x)``), work and memory traffic are per innermost iteration, and access
patterns are fractions of the accesses; nothing depends on loop or buffer names or
positions in the tree. Memory traffic is estimated per cache level with the sizes in
``CACHE_BYTES``: the outermost loop whose working set (cache lines touched by everything
inside it) fits in the cache is reloaded each time it is entered.

``FEATURE_VERSION`` changes whenever the meaning or length of the vector changes: logged
features of another version are not used to train the model.

A GEMM micro-kernel and a convolution kernel take about 1-5 ms (see
``benchmarks/tune_search.py --features-timing``), well under the cost of lowering.
"""

from __future__ import annotations

import math

import numpy as np

from dlc import dtypes
from dlc.expr import nodes as n
from dlc.expr.analysis import structural_equal, structural_key
from dlc.tir import stmt as s

FEATURE_VERSION = 1

#: Typical data cache sizes (L1d, L2, last-level share) used for the traffic estimates.
CACHE_BYTES = (32 * 1024, 1024 * 1024, 32 * 1024 * 1024)
CACHE_LINE = 64

_KINDS = ("serial", "parallel", "vectorized", "unrolled")

STORE_FEATURES = (
    "log_iterations",            # iterations of the store (product of loop extents)
    "depth",                     # enclosing loops
    *(f"log_extent_{k}" for k in _KINDS),  # product of extents by loop kind
    "log_inner_extent",          # innermost loop
    *(f"inner_is_{k}" for k in _KINDS),
    "log_vector_bytes",          # lanes x item size of the innermost vectorized loop
    "vector_is_inner",           # the vectorized loop is the innermost one
    "log_float_ops",             # per iteration
    "log_int_ops",
    "log_loads",
    "log_math_calls",
    "log_selects_guards",        # selects in the value plus enclosing ifs
    "is_update",                 # reads its own output element (a reduction)
    "frac_invariant",            # accesses whose address ignores the innermost loop
    "frac_contiguous",           # ... that move by one element
    "frac_strided",              # ... that jump or are not affine
    "log_gathers",               # accesses strided w.r.t. the vectorized loop
    "log_register_tile",         # unrolled x vectorized extent inside the reduction loop
    "log_reuse_distance",        # mean iterations between reuses of an access
    *(f"log_bytes_per_iter_{lvl}" for lvl in ("l1", "l2", "l3")),
    "log_working_set",           # bytes (whole lines) touched by the whole nest
    "log_parallel_extent",       # outermost parallel loop
    "log_forks",                 # times the parallel region starts
    "parallel_position",         # depth of the parallel loop / depth (1 when none)
)

GLOBAL_FEATURES = (
    "log_stores",
    "log_loops",
    "log_total_iterations",
    "log_total_float_ops",
    "main_share",                # weight of the heaviest store / total weight
    "log_allocations",
    "log_alloc_bytes",
    "log_max_alloc_bytes",
    "log_alloc_entries",         # times allocations are entered (inside loops)
    "log_ifs",
    "log_likely_ifs",
    "vectorized_share",          # weight of stores inside a vectorized loop
    "parallel_share",
    "log_param_bytes",
    "log_flops_per_param_byte",  # arithmetic intensity over the arguments
)

FEATURE_NAMES = (tuple(f"main.{x}" for x in STORE_FEATURES)
                 + tuple(f"mean.{x}" for x in STORE_FEATURES) + GLOBAL_FEATURES)
N_FEATURES = len(FEATURE_NAMES)


def extract(func: s.PrimFunc) -> np.ndarray:
    """The feature vector (float64, length ``N_FEATURES``, all finite) of ``func``."""
    walker = _Walker()
    walker.stmt(func.body, [], 0)
    stores = walker.stores
    weights = np.array([w for w, _ in stores]) if stores else np.zeros(0)
    rows = np.array([f for _, f in stores]) if stores else np.zeros((0, len(STORE_FEATURES)))
    total = float(weights.sum())
    if stores:
        main = rows[int(np.argmax(weights))]
        mean = (weights[:, None] * rows).sum(axis=0) / total
    else:
        main = mean = np.zeros(len(STORE_FEATURES))
    param_bytes = sum(p.nbytes for p in func.params if isinstance(p, n.Buffer))
    flops = walker.total_flops
    share = (lambda mask: float(weights[mask].sum()) / total) if total else (lambda mask: 0.0)
    vec = np.array([f[STORE_FEATURES.index("log_extent_vectorized")] > 0 for _, f in stores],
                   dtype=bool)
    par = np.array([f[STORE_FEATURES.index("log_extent_parallel")] > 0 for _, f in stores],
                   dtype=bool)
    glob = [
        _log(len(stores)), _log(walker.loops), _log(walker.total_iterations), _log(flops),
        float(weights.max()) / total if total else 0.0,
        _log(walker.allocs), _log(walker.alloc_bytes), _log(walker.max_alloc_bytes),
        _log(walker.alloc_entries), _log(walker.ifs), _log(walker.likely_ifs),
        share(vec) if stores else 0.0, share(par) if stores else 0.0,
        _log(param_bytes), _log(flops / param_bytes) if param_bytes else 0.0,
    ]
    out = np.concatenate([main, mean, np.array(glob, dtype=np.float64)])
    return np.nan_to_num(out, nan=0.0, posinf=64.0, neginf=0.0)


def _log(x: float) -> float:
    return math.log2(1.0 + max(0.0, float(x)))


class _Loop:
    __slots__ = ("var", "extent", "kind")

    def __init__(self, var, extent: int, kind: str):
        self.var, self.extent, self.kind = var, extent, kind


_KIND_NAMES = {s.ForKind.SERIAL: "serial", s.ForKind.PARALLEL: "parallel",
               s.ForKind.VECTORIZED: "vectorized", s.ForKind.UNROLLED: "unrolled",
               s.ForKind.THREAD_BINDING: "parallel"}


class _Walker:
    """One pass over the statements, keeping the stack of enclosing loops."""

    def __init__(self):
        self.stores: list[tuple[float, list[float]]] = []
        self.lets: dict = {}
        self.affine_memo: dict = {}
        self.loops = self.allocs = self.alloc_entries = self.ifs = self.likely_ifs = 0
        self.alloc_bytes = self.max_alloc_bytes = 0
        self.total_iterations = self.total_flops = 0.0

    def stmt(self, node, loops: list, guards: int) -> None:
        if isinstance(node, s.For):
            self.loops += 1
            extent = node.extent.value if isinstance(node.extent, n.Const) else 1
            loops.append(_Loop(node.var, max(1, int(extent)), _KIND_NAMES[node.kind]))
            self.stmt(node.body, loops, guards)
            loops.pop()
        elif isinstance(node, s.SeqStmt):
            for child in node.stmts:
                self.stmt(child, loops, guards)
        elif isinstance(node, s.BufferStore):
            self.store(node, loops, guards)
        elif isinstance(node, s.Allocate):
            nbytes = node.buffer.nbytes
            self.allocs += 1
            self.alloc_bytes += nbytes
            self.max_alloc_bytes = max(self.max_alloc_bytes, nbytes)
            self.alloc_entries += math.prod(lp.extent for lp in loops)
            self.stmt(node.body, loops, guards)
        elif isinstance(node, s.IfThenElse):
            self.ifs += 1
            self.likely_ifs += bool(node.likely)
            self.stmt(node.then_case, loops, guards + 1)
            if node.else_case is not None:
                self.stmt(node.else_case, loops, guards + 1)
        elif isinstance(node, s.LetStmt):
            self.lets[node.var] = node.value
            self.stmt(node.body, loops, guards)
        elif isinstance(node, s.Evaluate):
            pass
        else:
            raise TypeError(f"features: unexpected statement {type(node).__name__}")

    # -- one store --------------------------------------------------------------------
    def store(self, node: s.BufferStore, loops: list, guards: int) -> None:
        counts = _Counts()
        counts.visit(node.value)
        for index in node.indices:
            counts.visit(index)
        iterations = float(math.prod(lp.extent for lp in loops))
        accesses = [(node.buffer, node.indices)] + [(ld.buffer, ld.indices)
                                                     for ld in counts.loads]
        is_update = any(ld.buffer is node.buffer and len(ld.indices) == len(node.indices)
                        and all(structural_equal(a, b) for a, b in zip(ld.indices, node.indices))
                        for ld in counts.loads)
        pattern = self.patterns(accesses, loops)
        per_kind = {k: 0.0 for k in _KINDS}
        for lp in loops:
            per_kind[lp.kind] += math.log2(lp.extent)
        inner = loops[-1] if loops else None
        vloop = next((lp for lp in reversed(loops) if lp.kind == "vectorized"), None)
        ppos = next((i for i, lp in enumerate(loops) if lp.kind == "parallel"), None)
        traffic, working_set = self.traffic(accesses, loops, iterations)
        feats = [
            math.log2(iterations), float(len(loops)),
            *(per_kind[k] for k in _KINDS),
            math.log2(inner.extent) if inner else 0.0,
            *((1.0 if inner is not None and inner.kind == k else 0.0) for k in _KINDS),
            _log(vloop.extent * dtypes.itemsize(node.buffer.dtype)) if vloop else 0.0,
            1.0 if vloop is not None and vloop is inner else 0.0,
            _log(counts.float_ops), _log(counts.int_ops), _log(len(counts.loads)),
            _log(counts.calls), _log(counts.selects + guards),
            1.0 if is_update else 0.0,
            *pattern["innermost"],
            _log(pattern["gathers"]),
            self.register_tile(node, loops) if is_update else 0.0,
            pattern["reuse"],
            *(_log(t / iterations) for t in traffic),
            _log(working_set),
            math.log2(loops[ppos].extent) if ppos is not None else 0.0,
            math.log2(math.prod(lp.extent for lp in loops[:ppos])) if ppos is not None else 0.0,
            ppos / len(loops) if ppos is not None else 1.0,
        ]
        weight = iterations * (1.0 + counts.float_ops + len(counts.loads))
        self.total_iterations += iterations
        self.total_flops += iterations * counts.float_ops
        self.stores.append((weight, feats))

    def affine(self, e) -> tuple[dict, frozenset]:
        """``(coefficients by Var, Vars used non-linearly)`` of an index expression."""
        hit = self.affine_memo.get(id(e))
        if hit is not None and hit[0] is e:
            return hit[1]
        if isinstance(e, n.Const):
            out = ({}, frozenset())
        elif isinstance(e, n.Var):
            out = self.affine(self.lets[e]) if e in self.lets else ({e: 1}, frozenset())
        elif isinstance(e, (n.Add, n.Sub)):
            (ca, na), (cb, nb) = self.affine(e.a), self.affine(e.b)
            sign = 1 if isinstance(e, n.Add) else -1
            coefs = dict(ca)
            for v, c in cb.items():
                coefs[v] = coefs.get(v, 0) + sign * c
            out = (coefs, na | nb)
        elif isinstance(e, n.Mul) and (isinstance(e.a, n.Const) or isinstance(e.b, n.Const)):
            const, other = (e.a, e.b) if isinstance(e.a, n.Const) else (e.b, e.a)
            coefs, nonlin = self.affine(other)
            out = ({v: c * int(const.value) for v, c in coefs.items()}, nonlin)
        else:
            out = ({}, frozenset(_vars(e, self.lets)))
        self.affine_memo[id(e)] = (e, out)
        return out

    def flat(self, buffer, indices) -> tuple[dict, frozenset, list]:
        """Element strides of one access by Var, non-affine Vars, per-dimension forms."""
        dims = [self.affine(i) for i in indices]
        strides = buffer.strides or (1,) * len(indices)
        coefs: dict = {}
        nonlin: frozenset = frozenset()
        for (c, nl), stride in zip(dims, strides):
            for v, k in c.items():
                coefs[v] = coefs.get(v, 0) + k * stride
            nonlin |= nl
        return coefs, nonlin, dims

    def patterns(self, accesses, loops) -> dict:
        inner = loops[-1].var if loops else None
        vloop = next((lp.var for lp in reversed(loops) if lp.kind == "vectorized"), None)
        kinds = [0, 0, 0]
        gathers = 0
        reuse = []
        total_iters = math.prod(lp.extent for lp in loops)
        for buffer, indices in accesses:
            coefs, nonlin, _ = self.flat(buffer, indices)
            kinds[_stride_kind(coefs, nonlin, inner)] += 1
            if vloop is not None and _stride_kind(coefs, nonlin, vloop) == 2:
                gathers += 1
            distance = total_iters
            inside = 1
            for lp in reversed(loops):  # innermost loop whose var the address ignores
                if coefs.get(lp.var, 0) == 0 and lp.var not in nonlin:
                    distance = inside
                    break
                inside *= lp.extent
            reuse.append(math.log2(distance))
        count = max(1, len(accesses))
        return {"innermost": [k / count for k in kinds], "gathers": gathers,
                "reuse": sum(reuse) / count}

    def register_tile(self, node: s.BufferStore, loops) -> float:
        """log2 of the unrolled x vectorized extents inside the innermost loop that the
        store's address ignores (the accumulators a reduction keeps in registers)."""
        coefs, nonlin, _ = self.flat(node.buffer, node.indices)
        tile = 1
        for lp in reversed(loops):
            if coefs.get(lp.var, 0) == 0 and lp.var not in nonlin:
                return math.log2(tile)
            if lp.kind in ("unrolled", "vectorized"):
                tile *= lp.extent
        return 0.0

    def traffic(self, accesses, loops, iterations: float) -> tuple[list[float], float]:
        """Bytes brought into each cache of CACHE_BYTES by the store's nest, and the
        working set of the whole nest."""
        forms = []
        seen = set()
        for buffer, indices in accesses:
            key = (id(buffer), tuple(structural_key(i) for i in indices))
            if key in seen:
                continue
            seen.add(key)
            forms.append((buffer, self.flat(buffer, indices)[2]))
        depth = len(loops)
        # working set of everything inside loop ``level`` (depth: a single iteration)
        sets = []
        for level in range(depth + 1):
            inside = {lp.var: lp.extent for lp in loops[level:]}
            per_buffer: dict = {}
            for buffer, dims in forms:
                lines = _lines(buffer, dims, inside)
                per_buffer[id(buffer)] = max(per_buffer.get(id(buffer), 0), lines)
            sets.append(sum(per_buffer.values()) * CACHE_LINE)
        entries = [1.0]
        for lp in loops:
            entries.append(entries[-1] * lp.extent)
        traffic = []
        for size in CACHE_BYTES:
            level = next((lvl for lvl in range(depth + 1) if sets[lvl] <= size), depth)
            traffic.append(entries[level] * sets[level])
        return traffic, float(sets[0])


def _lines(buffer, dims, inside: dict) -> int:
    """Cache lines of ``buffer`` touched when the Vars of ``inside`` run over their
    extents (a bounding box per dimension; the last dimension counted in lines)."""
    spans = []
    for (coefs, nonlin), extent in zip(dims, buffer.shape):
        span = 1 + sum(abs(c) * (inside[v] - 1) for v, c in coefs.items() if v in inside)
        for v in nonlin:
            if v in inside:
                span *= inside[v]
        spans.append(min(span, max(1, int(extent))))
    if not spans:
        return 1
    itemsize = dtypes.itemsize(buffer.dtype)
    last = -(-spans[-1] * itemsize // CACHE_LINE)
    return math.prod(spans[:-1]) * last


def _stride_kind(coefs: dict, nonlin: frozenset, var) -> int:
    """0: the address ignores ``var``; 1: moves by one element; 2: jumps or not affine."""
    if var is None:
        return 0
    if var in nonlin:
        return 2
    stride = abs(coefs.get(var, 0))
    return 0 if stride == 0 else 1 if stride == 1 else 2


def _vars(e, lets: dict) -> set:
    found = set()
    stack = [e]
    while stack:
        x = stack.pop()
        if isinstance(x, n.Var):
            if x in lets:
                stack.append(lets[x])
            else:
                found.add(x)
            continue
        _push_children(stack, x)
    return found


def _push_children(stack: list, x) -> None:
    """Push the sub-expressions of ``x`` onto ``stack``."""
    for name in n.child_fields(x):
        child = getattr(x, name)
        if isinstance(child, tuple):
            stack.extend(child)
        elif child is not None:
            stack.append(child)


class _Counts:
    """Operations in one statement's expressions (shared subexpressions counted once)."""

    def __init__(self):
        self.float_ops = self.int_ops = self.calls = self.selects = 0
        self.loads: list = []
        self.seen: set = set()

    def visit(self, e) -> None:
        stack = [e]
        while stack:
            x = stack.pop()
            if id(x) in self.seen or not isinstance(x, n.Expr):
                continue
            self.seen.add(id(x))
            if isinstance(x, n.BufferLoad):
                self.loads.append(x)
            elif isinstance(x, n.Call):
                self.calls += 1
                self.float_ops += dtypes.is_float(x.dtype)
            elif isinstance(x, n.Select):
                self.selects += 1
            elif isinstance(x, n.BinaryOp) and not isinstance(x, (n.CmpOp, n.And, n.Or)):
                if dtypes.is_float(x.dtype):
                    self.float_ops += 1
                else:
                    self.int_ops += 1
            _push_children(stack, x)
