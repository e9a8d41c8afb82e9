"""Run graphs whose types depend on run-time values, by staged specialization.

A run proceeds in steps. Each step compiles the part of the graph whose types are known
(cached by input types and specialized values) and runs it; then, at the frontier, the
nodes that needed values become computable: host ops (data-dependent output shapes) run
with NumPy, and ops that needed a shape-like input get it as a constant. The remaining
graph is typed again with those values, and the next step begins. Graphs with shape-like
graph inputs therefore compile once per distinct value of those inputs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from dlc.errors import DlcError
from dlc.graph.ir import Graph, TensorType
from dlc.graph.passes.infer_types import infer_types
from dlc.ops import registry

_MAX_STEPS = 10_000
#: Compiled pieces a DynamicModel keeps by default (see CompiledCache).
DEFAULT_CACHE_SIZE = 64


class CompiledCache:
    """The compiled pieces of a DynamicModel, by input types and specialized values, least
    recently used first out once ``maxsize`` are held (each holds a loaded library; an
    evicted one is unloaded once nothing uses it, and compiled again if needed)."""

    def __init__(self, maxsize: int = DEFAULT_CACHE_SIZE):
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.compiles = 0  # how many pieces were compiled (a miss each)
        self.maxsize = maxsize

    @property
    def maxsize(self) -> int:
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DlcError(f"the compiled-piece cache holds at least 1 entry, got {value!r}")
        with self._lock:
            self._maxsize = value
            self._evict()

    def __len__(self) -> int:
        return len(self._items)

    def get_or_compile(self, key, compile_fn):
        """The piece cached under ``key``, else ``compile_fn()`` cached."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        compiled = compile_fn()  # outside the lock: compiles of other keys go on
        with self._lock:
            self.compiles += 1
            self._items[key] = compiled
            self._items.move_to_end(key)
            self._evict()
        return compiled

    def _evict(self) -> None:
        while len(self._items) > self._maxsize:
            self._items.popitem(last=False)


def run_dynamic(model, arrays: dict) -> list:
    """Evaluate ``model.graph`` (a DynamicModel's) on named input arrays."""
    env = dict(arrays)
    graph = model.graph
    pending = list(graph.nodes)
    constants = dict(graph.constants)
    for _ in range(_MAX_STEPS):
        if not pending:
            break
        pending = _step(model, graph, pending, constants, env)
    else:  # pragma: no cover - a graph of more than _MAX_STEPS frontier steps
        raise DlcError("dynamic execution did not finish")
    out = []
    for name in graph.outputs:
        value = env[name] if name in env else constants[name]
        out.append(np.array(value, copy=True))
    return out


def _step(model, graph: Graph, pending: list, constants: dict, env: dict) -> list:
    """Run every node that can be typed now, then the frontier; return what is left."""
    sub = _subgraph(graph, pending, constants, env, specialized={})
    typed = infer_types(sub, fold=True)
    constants.update(typed.constants)
    ready = [n for n in pending if all(o in typed.types or not o for o in n.outputs)]
    later = [n for n in pending if n not in ready]
    if ready:
        _run_compiled(model, typed, ready, later, graph.outputs, env)
    frontier = [n for n in later if all((not x) or x in env or x in constants or
                                        x in typed.constants for x in n.inputs)]
    if not frontier and later:
        names = ", ".join(f"{n.op} {n.name!r}" for n in later[:3])
        raise DlcError(f"cannot make progress at nodes {names}: their inputs are never "
                       "computed")
    for node in frontier:
        _run_frontier_node(model, node, constants, typed.constants, env)
    return [n for n in later if n not in frontier]


def dynamic_causes(graph: Graph) -> list[str]:
    """Why a typed graph's shapes depend on run-time values: one line per node where the
    unknown types begin (its inputs are typed, its outputs are not), saying what it needs
    and, for a needed value, which model inputs it is computed from."""
    producers = {o: node for node in graph.nodes for o in node.outputs if o}
    causes = []
    for node in graph.nodes:
        unknown = [o for o in node.outputs if o and o not in graph.types]
        if not unknown or any(x and x not in graph.types for x in node.inputs):
            continue
        op = registry.get(node.op)
        what = f"{node.op} node {node.name!r}"
        if op.host:
            causes.append(f"{what}: its output shapes depend on its input values"
                          + _from_inputs(graph, producers, [x for x in node.inputs if x]))
            continue
        needed = [node.inputs[k] for k in op.value_inputs
                  if k < len(node.inputs) and node.inputs[k]
                  and node.inputs[k] not in graph.constants]
        names = ", ".join(repr(x) for x in needed) or "an input"
        causes.append(f"{what}: needs the value of {names} to know its output shape"
                      + _from_inputs(graph, producers, needed))
    return causes


def _from_inputs(graph: Graph, producers: dict, names: list) -> str:
    """", computed from model input 'x'" for the graph inputs ``names`` depend on."""
    found, seen, todo = [], set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in graph.inputs:
            found.append(name)
        elif name in producers:
            todo += [x for x in producers[name].inputs if x]
    if not found:
        return ""
    plural = "s" if len(found) > 1 else ""
    return f", computed from model input{plural} " + ", ".join(
        repr(x) for x in sorted(set(found), key=graph.inputs.index))


def _value(name, constants, folded, env):
    if name in env:
        return env[name]
    if name in constants:
        return constants[name]
    return folded[name]


def _run_frontier_node(model, node, constants, folded, env) -> None:
    op = registry.get(node.op)
    arrays = [_value(x, constants, folded, env) if x else None for x in node.inputs]
    in_types = [TensorType.of(np.asarray(a)) if a is not None else None for a in arrays]
    if op.host:
        from dlc.compiler.bodies import body_runner

        ctx = registry.make_context(op, node.name, node.attrs, in_types, arrays)
        ctx.outer_env = dict(env)
        ctx.run_body = body_runner(model.target)
        registry.infer_node(op, ctx)
        outputs = registry.run_reference(op, ctx, arrays)
        for name, value in zip(node.outputs, outputs):
            if name:
                env[name] = np.asarray(value)
        return
    # a compiled op that needed input values: specialize on exactly those inputs
    values = [a if k in op.value_inputs else None for k, a in enumerate(arrays)]
    ctx = registry.make_context(op, node.name, node.attrs, in_types, values)
    try:
        registry.infer_node(op, ctx)
    except registry.NeedsValueError as err:
        raise DlcError(f"{node.op} node {node.name!r} needs the value of input "
                       f"{err.input_index} to know its output type, but that input is not "
                       "declared in the op's value_inputs (an op-library bug)") from None
    inputs = {x: np.asarray(a) for x, a, k in zip(node.inputs, arrays, range(len(arrays)))
              if x and k not in op.value_inputs}
    specialized = {x: np.asarray(a) for x, a, k in zip(node.inputs, arrays, range(len(arrays)))
                   if x and k in op.value_inputs}
    g = Graph(f"{node.op}_step", list(inputs), [o for o in node.outputs if o])
    for name, a in inputs.items():
        g.types[name] = TensorType.of(a)
    g.constants.update(specialized)
    for name, a in specialized.items():
        g.types[name] = TensorType.of(a)
    g.nodes = [node]
    typed = infer_types(g, fold=True)
    compiled = _compile_cached(model, typed, ("frontier", id(node)))
    results = compiled.run(*[inputs[n] for n in typed.inputs])
    for name, value in zip(typed.outputs, results):
        env[name] = value


def _subgraph(graph, nodes, constants, env, specialized) -> Graph:
    """The graph of ``nodes`` with every already-computed tensor as a typed input."""
    produced = {o for n in nodes for o in n.outputs if o}
    reads = []
    seen = set()
    for n in nodes:
        for x in n.inputs:
            if x and x not in produced and x not in seen:
                seen.add(x)
                reads.append(x)
    g = Graph(graph.name, [], [])
    for x in reads:
        if x in env:
            g.inputs.append(x)
            g.types[x] = TensorType.of(np.asarray(env[x]))
        elif x in constants:
            g.constants[x] = constants[x]
            g.types[x] = TensorType.of(constants[x])
    g.nodes = list(nodes)
    return g


def _run_compiled(model, typed: Graph, ready: list, later: list, outputs, env) -> None:
    needed = set(outputs)
    for n in later:
        needed.update(x for x in n.inputs if x)
    produced = [o for n in ready for o in n.outputs if o]
    wanted = [o for o in dict.fromkeys(produced) if o in needed]
    g = Graph(typed.name, [x for x in typed.inputs], wanted)
    g.types = dict(typed.types)
    g.constants = dict(typed.constants)
    g.nodes = [n for n in typed.nodes if n in ready]
    if not wanted:
        return
    compiled = _compile_cached(model, g, ("ready", tuple(id(n) for n in ready)))
    results = compiled.run(*[np.asarray(env[x]) for x in g.inputs])
    for name, value in zip(wanted, results):
        env[name] = value


def _compile_cached(model, graph: Graph, key_base):
    from dlc.compiler.model import CompiledModel

    key = (key_base, tuple((n, graph.types[n]) for n in graph.inputs),
           tuple(sorted((n, v.dtype.str, v.shape, v.tobytes()) for n, v in
                        graph.constants.items() if v.size <= 4096)),
           tuple(graph.outputs))
    return model.cache.get_or_compile(
        key, lambda: CompiledModel.from_graph(graph, model.target, tuning=model.tuning))
