"""Compile and run control-flow bodies (If/Loop/Scan) for host ops, cached per body graph
and input types. The compiler hands ``body_runner(target)`` to host ops as
``OpContext.run_body``."""

from __future__ import annotations

import threading
import weakref

import numpy as np

from dlc.graph.ir import Graph, TensorType
from dlc.target import Target

_CACHE: dict = {}  # (id(body), target) -> (weakref to the body, {input types: model})
_CACHE_LOCK = threading.Lock()  # held to sweep and add entries, not while compiling


def body_runner(target: Target | None = None):
    """A function ``run(graph, arrays) -> outputs`` compiling bodies for ``target``."""
    target = Target.parse(target)

    def run(graph: Graph, arrays) -> list:
        arrays = [np.asarray(a) for a in arrays]
        key = (id(graph), str(target))
        with _CACHE_LOCK:
            entry = _CACHE.get(key)
            if entry is None or entry[0]() is not graph:
                for stale in [k for k, (ref, _) in _CACHE.items() if ref() is None]:
                    del _CACHE[stale]
                entry = (weakref.ref(graph), {})
                _CACHE[key] = entry
        types = tuple((a.shape, a.dtype.str) for a in arrays)
        model = entry[1].get(types)
        if model is None:
            from dlc.compile import compile as dlc_compile

            typed = Graph(graph.name, list(graph.inputs), list(graph.outputs),
                          list(graph.nodes), dict(graph.constants))
            typed.types = {n: TensorType.of(v) for n, v in graph.constants.items()}
            typed.types.update({n: TensorType.of(a) for n, a in zip(graph.inputs, arrays)})
            model = dlc_compile(typed, target=target)
            entry[1][types] = model
        return model.run(*arrays)

    return run
