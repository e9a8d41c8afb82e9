"""Compiled models: a static one (one native call per run) and a dynamic one that
specializes the graph on run-time shapes and values and caches each specialization."""

from __future__ import annotations

import numpy as np

from dlc import dtypes
from dlc.compiler.kernels import ident, lower_graph
from dlc.compiler.plan import assign_locations, output_copies
from dlc.errors import ArgumentError
from dlc.graph.ir import Graph, TensorType
from dlc.target import Target


class CompiledModel:
    """A graph compiled to native code; ``run`` takes arrays (or a dict) and returns the
    outputs as a list of arrays in graph order."""

    def __init__(self, graph: Graph, executor, host_ops=(), kernels=()):
        self.graph = graph
        self.source_graph = graph
        self.executor = executor
        self.host_ops = list(host_ops)
        self.kernels = list(kernels)
        self.compile_seconds = 0.0
        self.input_names = executor.input_names
        self.output_names = executor.output_names

    @classmethod
    def from_graph(cls, graph: Graph, target: Target, name: str | None = None,
                   tuning: dict | None = None, progress=None):
        from dlc.build import build_funcs
        from dlc.runtime.executor import Executor

        kernels = lower_graph(graph, target, tuning, progress)
        locations, weights, arena = assign_locations(graph, kernels)
        from dlc.compiler.plan import lifetimes, memory_report

        spans = lifetimes(graph, kernels, {n: loc for n, loc in locations.items()
                                           if loc[0] != "arena"})
        entry = "dlc_run_" + ident(name or graph.name)
        unique, symbol_of = dedupe_kernels(kernels)
        calls = [(symbol_of[k.name], [locations[a] for a in k.args]) for k in kernels]
        plan = {
            "entry": entry if kernels else None,
            "inputs": [_spec(graph, n) for n in graph.inputs],
            "outputs": [_spec(graph, n) for n in graph.outputs],
            "arena_bytes": arena,
            "memory": memory_report(spans, arena),
            "copies": output_copies(graph, locations),
            "calls": [{"kernel": k.name, "symbol": symbol, "args": args, "flops": k.flops}
                      for k, (symbol, args) in zip(kernels, calls)],
        }
        module = None
        if kernels:
            if progress:
                progress(0, 1, f"compiling native code ({len(kernels)} kernels, LLVM)")
            module = build_funcs([k.func for k in unique], target, entries=[(entry, calls)])
            if progress:
                progress(1, 1, f"compiling native code ({len(kernels)} kernels, LLVM)")
        constants = {n: graph.constants[n] for n in graph.outputs if n in graph.constants}
        model = cls(graph, Executor(module, plan, weights, constants), kernels=kernels)
        model.target = target
        return model

    def run(self, *args, **kwargs) -> list:
        return self.executor.run(*args, **kwargs)

    __call__ = run

    def profile(self, inputs, repeat: int = 20, warmup: int = 3):
        """Each kernel's median time, share and GFLOP/s (a dlc.runtime.profile.Profile;
        print it for a table)."""
        return self.executor.profile(inputs, repeat, warmup)

    @property
    def module(self):
        return self.executor.module

    def memory_plan(self) -> dict:
        """Peak bytes of intermediates with buffer reuse (``arena_bytes``) and without it
        (``without_reuse_bytes``), and the number of intermediate tensors."""
        return dict(self.executor.plan["memory"])

    def save(self, path) -> int:
        """Write a one-file artifact (see docs/reference/artifact.md); returns its size."""
        from dlc import __version__
        from dlc.runtime.artifact import write_artifact
        from dlc.runtime.cpu_features import required_features
        from dlc.runtime.manifest import ARTIFACT_KIND, pack_constants

        module = self.executor.module
        target = self.target
        constants, constants_bytes = pack_constants(self.executor.constants)
        features = module.metadata["features"] if module is not None else ""
        manifest = {
            "kind": ARTIFACT_KIND,
            "dlc_version": __version__,
            "name": self.graph.name,
            "target": {"string": str(target),
                       "cpu": module.metadata["cpu"] if module is not None else None,
                       "features": features,
                       "required_features": required_features(
                           features, module.metadata["cpu"] if module is not None else None)},
            "inputs": self.executor.inputs,
            "outputs": self.executor.outputs,
            "plan": self.executor.plan,
            "kernels": [k.name for k in self.kernels],
            "library_metadata": module.metadata if module is not None else None,
            "constants": constants,
        }
        sections = {"weights": self.executor.weights.tobytes()}
        if module is not None:
            sections["library"] = module.library_bytes
        if constants:
            sections["constants"] = constants_bytes
        return write_artifact(path, manifest, sections)


def dedupe_kernels(kernels) -> tuple[list, dict]:
    """Kernels with identical loop nests (canonical text) share one compiled function:
    returns (the kernels to compile, kernel name -> symbol to call)."""
    from dlc.build import kernel_symbol
    from dlc.tir.canonical import canonical_text

    first: dict = {}
    unique, symbol_of = [], {}
    for k in kernels:
        key = canonical_text(k.func)
        if key not in first:
            first[key] = k
            unique.append(k)
        symbol_of[k.name] = kernel_symbol(first[key].name)
    return unique, symbol_of


def _spec(graph: Graph, name: str) -> dict:
    t = graph.types[name]
    return {"name": name, "shape": list(t.shape), "dtype": t.dtype}


class DynamicModel:
    """A graph whose types depend on run-time values (shape-like inputs, data-dependent
    output sizes). Each distinct set of input shapes and needed values is compiled once
    and kept in ``cache`` (a :class:`~dlc.compiler.dynamic.CompiledCache`): the 64 most
    recently used pieces by default, ``model.cache.maxsize = n`` to change it."""

    def __init__(self, graph: Graph, target: Target, tuning: dict | None = None):
        from dlc.compiler.dynamic import CompiledCache

        self.graph = graph
        self.source_graph = graph
        self.target = target
        self.tuning = tuning
        self.input_names = list(graph.inputs)
        self.output_names = list(graph.outputs)
        self.cache = CompiledCache()

    def run(self, *args, **kwargs) -> list:
        from dlc.compiler.dynamic import run_dynamic

        arrays = _bind(self.graph, args, kwargs)
        return run_dynamic(self, arrays)

    __call__ = run


def _bind(graph: Graph, args, kwargs) -> dict:
    names = list(graph.inputs)
    if len(args) == 1 and isinstance(args[0], dict) and not kwargs:
        kwargs, args = dict(args[0]), ()
    if args and kwargs:
        raise ArgumentError("pass inputs either by position or by name, not both")
    if kwargs:
        unknown = sorted(set(kwargs) - set(names))
        if unknown:
            raise ArgumentError(f"unknown input name(s) {', '.join(unknown)}; the model's "
                                f"inputs are {', '.join(names)}")
        missing = [n for n in names if n not in kwargs]
        if missing:
            raise ArgumentError(f"missing input(s) {', '.join(missing)}")
        values = [kwargs[n] for n in names]
    else:
        if len(args) != len(names):
            raise ArgumentError(f"the model takes {len(names)} input(s) ({', '.join(names)}), "
                                f"got {len(args)}")
        values = list(args)
    out = {}
    for name, value in zip(names, values):
        arr = np.asarray(value)
        want = graph.types.get(name)
        if want is not None:
            if arr.dtype != dtypes.to_numpy(want.dtype):
                raise ArgumentError(f"input {name!r} must have dtype {want.dtype}, got "
                                    f"{arr.dtype}")
            if want.shape != tuple(arr.shape):
                raise ArgumentError(f"input {name!r} must have shape {want.shape}, got "
                                    f"{tuple(arr.shape)}")
        out[name] = np.ascontiguousarray(arr) if arr.ndim else arr
    return out


def typed_input_graph(graph: Graph, arrays: dict) -> Graph:
    g = graph.copy()
    for name, arr in arrays.items():
        g.types[name] = TensorType.of(arr)
    return g
