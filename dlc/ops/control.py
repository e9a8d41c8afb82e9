"""Control flow: If, Loop, Scan, and BatchedScan (ONNX Scan-8, with a batch axis).

Bodies are dlc Graphs held in attributes. These are host drivers (``host = True``): the
branch choice and the iteration run in Python, and every body execution calls
``ctx.run_body(graph, arrays)``: the compiler sets it to run the body compiled with dlc
(cached per body and input types, ``dlc.compiler.bodies``); without one (constant folding
in graph passes, the NumPy interpreter) bodies run with the ops' NumPy references, like
every other folded op.

Tensors of the enclosing graph reach a body as *captured* inputs: they follow the ONNX
inputs of the node and the body's own inputs, in the same order (``capture_outer``
rewrites a body that reads outer tensors by name into that form; the ONNX frontend does
it for every body). ``num_captured`` counts them for Loop and Scan; for If every input
after ``cond`` is captured. A body that still reads a tensor it does not define takes it
from ``ctx.outer_env`` when the caller provides one.

Output types depend on the run (branch taken, iterations done), so ``infer`` needs the
value of every input: it raises NeedsValueError until they are known, then runs the op
and keeps the results for ``reference``.
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

from dlc.graph.ir import Graph, TensorType
from dlc.ops.common import normalize_axis, np_dtype
from dlc.ops.registry import OPAQUE, REQUIRED, OpDef, register


# -- bodies -----------------------------------------------------------------------------
def free_names(graph: Graph) -> list:
    """Tensors that ``graph`` reads (in its nodes or outputs) but does not define."""
    defined = set(graph.inputs) | set(graph.constants)
    free: list = []
    for node in graph.nodes:
        for x in node.inputs:
            if x and x not in defined and x not in free:
                free.append(x)
        defined.update(o for o in node.outputs if o)
    free.extend(x for x in graph.outputs if x not in defined and x not in free)
    return free


def with_inputs(graph: Graph, names) -> Graph:
    """A copy of ``graph`` that also takes ``names`` as inputs, after its own."""
    g = graph.copy()
    g.inputs = list(graph.inputs) + [x for x in names if x not in graph.inputs]
    return g


def capture_outer(*bodies: Graph) -> tuple:
    """Make the outer tensors that ``bodies`` read explicit: returns (the names, in a fixed
    order, and the bodies taking them as trailing inputs). Pass the names as the node's
    trailing inputs."""
    names: list = []
    for body in bodies:
        names.extend(x for x in free_names(body) if x not in names)
    return names, [with_inputs(b, names) for b in bodies]


_WITH_OUTER: dict = {}  # id(body) -> (weakref to the body, {outer names: body taking them})
_TABLES_LOCK = threading.Lock()  # models with control flow may run in several threads


def _per_body(table: dict, graph: Graph) -> dict:
    """The cache entries of ``graph`` in ``table`` (dropped when the graph is collected)."""
    with _TABLES_LOCK:  # one thread at a time sweeps the table and adds to it
        entry = table.get(id(graph))
        if entry is None or entry[0]() is not graph:
            for key in [k for k, (ref, _) in table.items() if ref() is None]:
                del table[key]
            entry = (weakref.ref(graph), {})
            table[id(graph)] = entry
        return entry[1]


def run_body(ctx, graph: Graph, arrays) -> list:
    """Run a body on ``arrays`` (its inputs, in order); returns its outputs."""
    arrays = [np.asarray(a) for a in arrays]
    if len(arrays) != len(graph.inputs):
        raise ctx.error(f"body {graph.name!r} takes {len(graph.inputs)} inputs, got "
                        f"{len(arrays)}")
    missing = free_names(graph)
    if missing:
        outer = ctx.outer_env or {}
        unknown = [x for x in missing if x not in outer]
        if unknown:
            raise ctx.error(f"body {graph.name!r} reads {', '.join(map(repr, unknown))}, "
                            "which it does not define; pass tensors of the enclosing graph "
                            "as captured inputs (see dlc.ops.control.capture_outer)")
        graph = _with_outer(graph, missing)
        arrays = arrays + [np.asarray(outer[x]) for x in missing]
    runner = ctx.run_body or _run_with_references
    return [np.asarray(v) for v in runner(graph, arrays)]


def _run_with_references(graph: Graph, arrays) -> list:
    from dlc.graph.interpreter import run_graph

    return run_graph(graph, dict(zip(graph.inputs, arrays)))


def _with_outer(graph: Graph, names) -> Graph:
    cache = _per_body(_WITH_OUTER, graph)
    key = tuple(names)
    if key not in cache:
        cache[key] = with_inputs(graph, names)
    return cache[key]


def static_output_types(graph: Graph, in_types) -> list:
    """The body's output types inferred for ``in_types`` without running it (None where
    unknown until run time)."""
    from dlc.graph.passes.infer_types import infer_types

    typed = Graph(graph.name, list(graph.inputs), list(graph.outputs), list(graph.nodes),
                  dict(graph.constants))
    typed.types = {n: TensorType.of(v) for n, v in graph.constants.items()}
    typed.types.update(dict(zip(graph.inputs, in_types)))
    try:
        typed = infer_types(typed, fold=False)
    except Exception:  # noqa: BLE001 - only a fallback for empty scan outputs
        return [None] * len(graph.outputs)
    return [typed.types.get(x) for x in graph.outputs]


def _scalar_like(value, declared) -> np.ndarray:
    """A loop counter or condition shaped as the body declares it (scalar or [1])."""
    value = np.asarray(value)
    if declared is not None and declared.shape == (1,):
        return value.reshape(1)
    return value.reshape(())


def _single(ctx, value, what: str):
    value = np.asarray(value)
    if value.size != 1:
        raise ctx.error(f"{what} must hold one element, got shape {list(value.shape)}")
    return value.reshape(()).item()


# -- the host-driver base ---------------------------------------------------------------
class HostControl(OpDef):
    """``infer`` checks the structure, then needs every input value and runs the op."""

    pattern = OPAQUE
    host = True
    num_outputs = (1, None)

    def infer(self, ctx):
        self.check(ctx)
        arrays = []
        for k, t in enumerate(ctx.in_types):
            arrays.append(None if t is None else np.asarray(ctx.value(k)))
        results = self.execute(ctx, arrays)
        ctx.control_results = results
        return [TensorType.of(r) for r in results]

    def reference(self, ctx, *arrays):
        results = getattr(ctx, "control_results", None)
        if results is None:
            results = self.execute(ctx, [None if a is None else np.asarray(a) for a in arrays])
        return results

    def check(self, ctx) -> None:
        """Static checks of attributes and input counts."""

    def execute(self, ctx, arrays) -> list:
        raise NotImplementedError

    @staticmethod
    def _body(ctx, key: str) -> Graph:
        body = ctx.attrs[key]
        if not isinstance(body, Graph):
            raise ctx.error(f"attribute {key} must be a graph, got {type(body).__name__}")
        return body

    @staticmethod
    def _captured(ctx) -> int:
        count = int(ctx.attrs.get("num_captured", 0))
        if count < 0:
            raise ctx.error(f"num_captured must be >= 0, got {count}")
        return count


# -- If ---------------------------------------------------------------------------------
@register
class If(HostControl):
    """Run ``then_branch`` if the one-element ``cond`` is true, else ``else_branch``; the
    inputs after ``cond`` are the captured tensors both branches take as inputs."""

    name = "If"
    attrs = {"then_branch": REQUIRED, "else_branch": REQUIRED}
    num_inputs = (1, None)

    def check(self, ctx):
        if ctx.type(0).dtype != "bool":
            raise ctx.error(f"cond must be bool, got {ctx.type(0).dtype}")
        if ctx.type(0).size != 1:
            raise ctx.error(f"cond must hold one element, got shape {list(ctx.type(0).shape)}")
        then_b, else_b = self._body(ctx, "then_branch"), self._body(ctx, "else_branch")
        if len(then_b.outputs) != len(else_b.outputs):
            raise ctx.error(f"then_branch has {len(then_b.outputs)} outputs but else_branch "
                            f"has {len(else_b.outputs)}")
        for b in (then_b, else_b):
            if len(b.inputs) != len(ctx.in_types) - 1:
                raise ctx.error(f"branch {b.name!r} takes {len(b.inputs)} inputs but the node "
                                f"passes {len(ctx.in_types) - 1} captured tensors")

    def execute(self, ctx, arrays):
        branch = "then_branch" if _single(ctx, arrays[0], "cond") else "else_branch"
        return run_body(ctx, self._body(ctx, branch), arrays[1:])


# -- Loop -------------------------------------------------------------------------------
@register
class Loop(HostControl):
    """``for i in range(M) while cond``: the body maps (i, cond, v...) to (cond, v...,
    scan elements...); outputs are the final v... and the scan elements stacked on a new
    leading axis. M and cond may be omitted ("")."""

    name = "Loop"
    attrs = {"body": REQUIRED, "num_captured": 0}
    num_inputs = (1, None)   # M and cond may both be omitted ("")

    def _counts(self, ctx):
        body = self._body(ctx, "body")
        captured = self._captured(ctx)
        carried = max(len(ctx.in_types), 2) - 2 - captured
        if carried < 0:
            raise ctx.error(f"Loop takes M, cond, loop-carried values and {captured} captured "
                            f"tensors, got {len(ctx.in_types)} inputs")
        if len(body.inputs) != 2 + carried + captured:
            raise ctx.error(f"the body takes {len(body.inputs)} inputs; it must take the "
                            f"iteration number, the condition, the {carried} loop-carried "
                            f"values and {captured} captured tensors")
        scans = len(body.outputs) - 1 - carried
        if scans < 0:
            raise ctx.error(f"the body has {len(body.outputs)} outputs; it must return the "
                            f"condition and the {carried} loop-carried values first")
        return body, carried, captured, scans

    def check(self, ctx):
        self._counts(ctx)
        if ctx.has_input(0) and (ctx.type(0).dtype != "int64" or ctx.type(0).size != 1):
            raise ctx.error(f"M must be one int64, got {ctx.type(0)}")
        if ctx.has_input(1) and (ctx.type(1).dtype != "bool" or ctx.type(1).size != 1):
            raise ctx.error(f"cond must be one bool, got {ctx.type(1)}")

    def execute(self, ctx, arrays):
        body, carried, captured, scans = self._counts(ctx)
        arrays = list(arrays) + [None] * (2 - len(arrays))
        trips = None if arrays[0] is None else _single(ctx, arrays[0], "M")
        cond = True if arrays[1] is None else bool(_single(ctx, arrays[1], "cond"))
        values = list(arrays[2:2 + carried])
        outer = list(arrays[2 + carried:])
        declared = [body.types.get(x) for x in body.inputs[:2]]
        collected: list = [[] for _ in range(scans)]
        i = 0
        while cond and (trips is None or i < trips):
            outs = run_body(ctx, body, [_scalar_like(np.int64(i), declared[0]),
                                        _scalar_like(np.bool_(cond), declared[1]),
                                        *values, *outer])
            # without a cond input the body's condition is ignored (as the spec says;
            # onnxruntime stops on it anyway)
            if arrays[1] is not None:
                cond = bool(_single(ctx, outs[0], "the body's condition output"))
            self._check_carried(ctx, values, outs[1:1 + carried])
            values = outs[1:1 + carried]
            for k in range(scans):
                collected[k].append(outs[1 + carried + k])
            i += 1
        stacked = [self._stack(ctx, body, k, items, arrays, carried)
                   for k, items in enumerate(collected)]
        return values + stacked

    @staticmethod
    def _check_carried(ctx, old, new):
        for k, (a, b) in enumerate(zip(old, new)):
            if a.dtype != b.dtype:
                raise ctx.error(f"loop-carried value {k} changes dtype from {a.dtype} to "
                                f"{b.dtype}")

    def _stack(self, ctx, body, k, items, arrays, carried):
        if items:
            shapes = {x.shape for x in items}
            if len(shapes) != 1:
                raise ctx.error(f"scan output {k} changes shape across iterations: "
                                f"{sorted(shapes)}")
            return np.stack(items, axis=0)
        types = [TensorType((), "int64"), TensorType((), "bool")] + \
            [TensorType.of(np.asarray(a)) for a in arrays[2:]]
        t = static_output_types(body, types)[1 + carried + k]
        if t is None:
            raise ctx.error(f"the loop ran no iteration and the type of scan output {k} "
                            "is only known by running the body")
        return np.zeros((0, *t.shape), np_dtype(t.dtype))


# -- Scan -------------------------------------------------------------------------------
def scan_core(ctx, body, states, scans, outer, in_axes, in_dirs, out_axes, out_dirs,
              length: int) -> list:
    """Iterate ``body`` over ``length`` elements of ``scans``; returns the final states and
    the stacked scan outputs."""
    n = len(states)
    collected: list = [[] for _ in range(len(body.outputs) - n)]
    for t in range(length):
        elems = [np.take(x, length - 1 - t if rev else t, axis=ax)
                 for x, ax, rev in zip(scans, in_axes, in_dirs)]
        outs = run_body(ctx, body, [*states, *elems, *outer])
        states = outs[:n]
        for k, v in enumerate(outs[n:]):
            collected[k].append(v)
    results = list(states)
    for k, items in enumerate(collected):
        if not items:
            types = [TensorType.of(s) for s in states] + \
                [TensorType(tuple(d for a, d in enumerate(x.shape) if a != ax), _dt(x))
                 for x, ax in zip(scans, in_axes)] + [TensorType.of(o) for o in outer]
            t = static_output_types(body, types)[n + k]
            if t is None:
                raise ctx.error(f"the scan is empty and the type of scan output {k} is only "
                                "known by running the body")
            items_shape, dtype = t.shape, np_dtype(t.dtype)
            stacked = np.zeros((0, *items_shape), dtype)
        else:
            if len({x.shape for x in items}) != 1:
                raise ctx.error(f"scan output {k} changes shape across iterations")
            if out_dirs[k]:
                items = items[::-1]
            stacked = np.stack(items, axis=0)
        axis = normalize_axis(ctx, out_axes[k], stacked.ndim, "scan_output_axes")
        results.append(np.moveaxis(stacked, 0, axis))
    return results


def _dt(x):
    return TensorType.of(x).dtype


def _flags(ctx, key: str, count: int, what: str) -> list:
    values = list(ctx.attrs.get(key) or [])
    if not values:
        return [0] * count
    if len(values) != count:
        raise ctx.error(f"{key} has {len(values)} entries, expected {count} (one per {what})")
    return [int(v) for v in values]


@register
class Scan(HostControl):
    """Iterate a body over slices of the scan inputs along ``scan_input_axes``, carrying
    states: inputs are (states..., scan inputs..., captured...); outputs are the final
    states and the scan outputs stacked along ``scan_output_axes``."""

    name = "Scan"
    attrs = {"body": REQUIRED, "num_scan_inputs": REQUIRED, "scan_input_axes": [],
             "scan_input_directions": [], "scan_output_axes": [], "scan_output_directions": [],
             "num_captured": 0}
    num_inputs = (1, None)

    def _layout(self, ctx):
        body = self._body(ctx, "body")
        m = int(ctx.attrs["num_scan_inputs"])
        c = self._captured(ctx)
        n = len(ctx.in_types) - m - c
        if m < 1 or n < 0:
            raise ctx.error(f"num_scan_inputs={m} and num_captured={c} do not fit the "
                            f"{len(ctx.in_types)} inputs")
        if len(body.inputs) != n + m + c:
            raise ctx.error(f"the body takes {len(body.inputs)} inputs; expected {n} states, "
                            f"{m} scan elements and {c} captured tensors")
        k = len(body.outputs) - n
        if k < 0:
            raise ctx.error(f"the body has {len(body.outputs)} outputs, fewer than the {n} "
                            "states")
        return body, n, m, c, k

    def check(self, ctx):
        body, n, m, c, k = self._layout(ctx)
        in_axes = _flags(ctx, "scan_input_axes", m, "scan input")
        _flags(ctx, "scan_input_directions", m, "scan input")
        _flags(ctx, "scan_output_axes", k, "scan output")
        _flags(ctx, "scan_output_directions", k, "scan output")
        lengths = set()
        for j, ax in enumerate(in_axes):
            t = ctx.type(n + j)
            a = normalize_axis(ctx, ax, t.ndim, "scan_input_axes")
            lengths.add(t.shape[a])
        if len(lengths) > 1:
            raise ctx.error(f"the scan inputs have different lengths {sorted(lengths)} along "
                            "their scan axes")

    def execute(self, ctx, arrays):
        body, n, m, c, k = self._layout(ctx)
        scans = arrays[n:n + m]
        in_axes = [normalize_axis(ctx, a, x.ndim, "scan_input_axes")
                   for a, x in zip(_flags(ctx, "scan_input_axes", m, ""), scans)]
        length = scans[0].shape[in_axes[0]]
        return scan_core(ctx, body, arrays[:n], scans, arrays[n + m:], in_axes,
                         _flags(ctx, "scan_input_directions", m, ""),
                         _flags(ctx, "scan_output_axes", k, ""),
                         _flags(ctx, "scan_output_directions", k, ""), length)


@register
class BatchedScan(Scan):
    """ONNX Scan-8: inputs (sequence_lens or omitted, states..., scan inputs...,
    captured...) with batch axis 0 everywhere and sequence axis 1 on scan inputs; each batch
    entry is scanned separately for its length; scan outputs are padded with zeros to the
    longest sequence."""

    name = "BatchedScan"
    attrs = {"body": REQUIRED, "num_scan_inputs": REQUIRED, "directions": [],
             "num_captured": 0}
    num_inputs = (2, None)

    def _layout(self, ctx):
        body = self._body(ctx, "body")
        m = int(ctx.attrs["num_scan_inputs"])
        c = self._captured(ctx)
        n = len(ctx.in_types) - 1 - m - c
        if m < 1 or n < 0:
            raise ctx.error(f"num_scan_inputs={m} and num_captured={c} do not fit the "
                            f"{len(ctx.in_types)} inputs")
        if len(body.inputs) != n + m + c:
            raise ctx.error(f"the body takes {len(body.inputs)} inputs; expected {n} states, "
                            f"{m} scan elements and {c} captured tensors")
        return body, n, m, c, len(body.outputs) - n

    def check(self, ctx):
        body, n, m, c, k = self._layout(ctx)
        _flags(ctx, "directions", m, "scan input")
        batches, lengths = set(), set()
        for j in range(n + m):
            t = ctx.type(1 + j)
            if t.ndim < (2 if j >= n else 1):
                raise ctx.error(f"input {1 + j} has shape {list(t.shape)}; states need a batch "
                                "axis and scan inputs a batch and a sequence axis")
            batches.add(t.shape[0])
            if j >= n:
                lengths.add(t.shape[1])
        if len(batches) > 1 or len(lengths) > 1:
            raise ctx.error("states and scan inputs must share the batch size, and scan "
                            "inputs the sequence length")
        if ctx.has_input(0) and ctx.type(0).shape != (next(iter(batches)),):
            raise ctx.error(f"sequence_lens must have shape [batch], got "
                            f"{list(ctx.type(0).shape)}")

    def execute(self, ctx, arrays):
        body, n, m, c, k = self._layout(ctx)
        lens, states, scans = arrays[0], arrays[1:1 + n], arrays[1 + n:1 + n + m]
        outer = arrays[1 + n + m:]
        dirs = _flags(ctx, "directions", m, "")
        batch, longest = scans[0].shape[0], scans[0].shape[1]
        per_batch = []
        for b in range(batch):
            length = longest if lens is None else int(lens[b])
            if not 0 <= length <= longest:
                raise ctx.error(f"sequence_lens[{b}] = {length} is outside [0, {longest}]")
            seqs = [x[b, :length] for x in scans]
            per_batch.append(scan_core(ctx, body, [s[b] for s in states], seqs, outer,
                                       [0] * m, dirs, [0] * k, [0] * k, length))
        results = [np.stack([r[j] for r in per_batch]) for j in range(n)]
        for j in range(k):
            parts = [r[n + j] for r in per_batch]
            shape = (batch, longest, *parts[0].shape[1:])
            out = np.zeros(shape, parts[0].dtype)
            for b, p in enumerate(parts):
                out[b, :p.shape[0]] = p
            results.append(out)
        return results
