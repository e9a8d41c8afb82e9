"""Tuning tasks: the distinct kernels of models, and their identity.

A task is one kernel's computation on given shapes and dtypes, independent of tensor
names. Its key is the SHA-1 of the schedule family and the canonical text of the
*unscheduled* loop nest (buffers and variables renamed in order, ``dlc.tir.canonical``):
the whole computation, a fused elementwise body included, so that ``Exp(Relu(x))`` and
``Exp(Abs(x))`` are different tasks, and the same convolution in two models is one.

``extract_tasks`` compiles models up to their kernels (the same graph passes and lowering
driver as ``dlc.compile``), groups identical kernels and counts how often each occurs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from dlc import dtypes
from dlc.errors import DlcError
from dlc.graph.ir import Graph, Node
from dlc.target import Target

#: Bumped when the key's definition changes (records with other keys no longer match).
KEY_VERSION = 1


def computation_key(comp) -> str:
    """The task key of a ``dlc.compiler.kernels.KernelCompute``."""
    from dlc.tir.canonical import canonical_text
    from dlc.tir.lower import lower
    from dlc.tir.schedule import Schedule

    text = canonical_text(lower(Schedule(comp.args, name="kernel")))
    digest = hashlib.sha1(f"{KEY_VERSION}\n{comp.family}\n{text}".encode())
    return digest.hexdigest()


@dataclass
class Task:
    """One distinct kernel to tune. ``graph`` holds its node alone (with the constants it
    reads), so a task rebuilds its computation anywhere, a worker process included."""

    key: str
    graph: Graph
    template: str
    workload: dict
    flops: float
    models: dict = field(default_factory=dict)  # model name -> occurrences
    nodes: list = field(default_factory=list)   # names of the nodes it computes

    @property
    def weight(self) -> int:
        """How often the kernel occurs in the models it was extracted from."""
        return max(1, len(self.nodes))

    @property
    def node(self) -> Node:
        return self.graph.nodes[0]

    @property
    def name(self) -> str:
        """A short readable name: the op and the output shape."""
        out = self.workload["outputs"][0] if self.workload["outputs"] else None
        shape = "x".join(map(str, out[0])) if out else "-"
        return f"{self.workload['op']}[{shape}]"

    def compute(self, target=None):
        from dlc.compiler.kernels import kernel_compute

        return kernel_compute(self.graph, self.node, target)

    def space(self, target=None):
        """The template's configuration space on this task (its knobs and defaults)."""
        from dlc.autotune.space import DefaultConfig

        cfg = DefaultConfig(Target.parse(target))
        self._schedule(cfg)
        return cfg.space

    def lower(self, config: dict | None = None, target=None):
        """The kernel scheduled with ``config`` (None: the default configuration), lowered:
        ``(PrimFunc, trace)`` with the trace as its JSON object."""
        import json

        from dlc.autotune.space import DefaultConfig, FixedConfig
        from dlc.tir.lower import lower

        target = Target.parse(target)
        cfg = DefaultConfig(target) if config is None else FixedConfig(config, target)
        sch = self._schedule(cfg)
        if config is not None:  # knobs it leaves out take their defaults
            cfg.space.check(dict(cfg.space.default(), **config))
        return lower(sch), json.loads(sch.trace.to_json())

    def _schedule(self, cfg):
        from dlc.schedules import apply_schedule
        from dlc.tir.schedule import Schedule

        comp = self.compute(cfg.target)
        sch = Schedule(comp.args, name="kernel")
        apply_schedule(comp.family, sch, comp.outputs, comp.anchor, cfg)
        return sch

    def param_specs(self) -> list:
        """The kernel's parameters in call order: name, shape, dtype, output or not."""
        comp = self.compute()
        count = len(comp.args) - len(comp.outputs)
        return [{"name": name, "shape": list(t.shape), "dtype": t.dtype, "output": k >= count}
                for k, (name, t) in enumerate(zip(comp.arg_names, comp.args))]

    def inputs(self, seed: int = 0) -> list:
        """Arrays for the input parameters: the model's constants (weights) where the node
        reads one, else random values (floats in [-1, 1], integers in [0, 4), booleans)."""
        rng = np.random.default_rng(seed)
        arrays = []
        for spec in self.param_specs():
            if spec["output"]:
                continue
            if spec["name"] in self.graph.constants:  # a copy, 0-d arrays staying 0-d
                arrays.append(np.array(self.graph.constants[spec["name"]], order="C"))
                continue
            arrays.append(random_array(rng, tuple(spec["shape"]), spec["dtype"]))
        return arrays


def random_array(rng: np.random.Generator, shape: tuple, dtype: str) -> np.ndarray:
    """Test data of ``dtype``: floats uniform in [-1, 1], integers in [0, 4), booleans."""
    np_dtype = dtypes.to_numpy(dtype)
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if np.issubdtype(np_dtype, np.integer):
        return np.asarray(rng.integers(0, 4, shape), dtype=np_dtype)
    return np.asarray(rng.uniform(-1, 1, shape), dtype=np_dtype)


def task_of(graph: Graph, node: Node, target=None) -> Task:
    """The task computing ``node`` of a typed, optimized ``graph``."""
    from dlc.compiler.kernels import algorithm_flops, kernel_compute

    comp = kernel_compute(graph, node, target)
    single = Graph(node.name or node.op, [x for x in dict.fromkeys(node.inputs) if x
                                          and x not in graph.constants],
                   [x for x in node.outputs if x], [node],
                   {x: graph.constants[x] for x in node.inputs if x in graph.constants})
    single.types = {x: graph.types[x] for x in list(node.inputs) + list(node.outputs) if x}
    return Task(computation_key(comp), single, comp.family, _workload(graph, node, comp),
                float(algorithm_flops(comp.args) or 0))



def _workload(graph: Graph, node: Node, comp) -> dict:
    """What a user reads of a task: op, template, parameter shapes and dtypes, attributes."""
    count = len(comp.args) - len(comp.outputs)
    attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
             for k, v in sorted(node.attrs.items()) if _plain(v)}
    if node.op == "FusedGroup":
        body = node.attrs["body"]
        attrs = {"ops": [n.op for n in body.nodes]}
    return {"op": node.op, "template": comp.family,
            "inputs": [[list(t.shape), t.dtype] for t in comp.args[:count]],
            "outputs": [[list(t.shape), t.dtype] for t in comp.args[count:]],
            "attrs": attrs}


def _plain(value) -> bool:
    return isinstance(value, (int, float, str, bool, list, tuple, np.ndarray)) and \
        not (isinstance(value, np.ndarray) and value.size > 64)


def extract_tasks(models, target=None, input_shapes=None, opt_level: int = 3,
                  choose_algorithm=None) -> list:
    """The distinct kernels of ``models`` (ONNX models, paths or dlc Graphs; one or a
    list), each with ``weight`` = how often it occurs in all of them and ``models`` = how
    often in each, in order of first occurrence. ``choose_algorithm``: see
    dlc.compile.run_graph_passes."""
    from dlc.compile import import_model, run_graph_passes
    from dlc.graph.passes.infer_types import infer_types, untyped_nodes

    target = Target.parse(target).check_available()
    if not isinstance(models, (list, tuple)):
        models = [models]
    tasks: dict = {}
    for model in models:
        graph = infer_types(import_model(model, input_shapes))
        if untyped_nodes(graph):
            raise DlcError(f"model {graph.name!r} has types that depend on run-time values; "
                           "give concrete input shapes (input_shapes / --input-shape) to "
                           "tune it")
        graph = run_graph_passes(graph, opt_level, target, choose_algorithm)
        for node in graph.nodes:
            if all(not out or graph.types[out].size == 0 for out in node.outputs):
                continue
            task = task_of(graph, node, target)
            task = tasks.setdefault(task.key, task)
            task.nodes.append(node.name)
            task.models[graph.name] = task.models.get(graph.name, 0) + 1
    return list(tasks.values())

