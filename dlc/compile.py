"""``dlc.compile``: the whole pipeline as one function of named stages.

    model (ONNX ModelProto, path, or dlc Graph)
      -> import_model        graph IR with concrete input shapes
      -> infer_types         types everywhere, constant shape computations folded
      -> GRAPH_PIPELINE      graph passes
      -> node_kernel         per node: tensor expressions + default schedule + loop IR
      -> build_funcs         LLVM: kernels + an entry function that calls them in order
      -> CompiledModel       run with NumPy arrays
"""

from __future__ import annotations

import time

from dlc.errors import DlcError
from dlc.graph.ir import Graph
from dlc.graph.passes.infer_types import infer_types, untyped_nodes
from dlc.target import Target

#: Graph passes run before lowering, in order.
GRAPH_PIPELINE: list = []


def import_model(model, input_shapes=None) -> Graph:
    """A dlc Graph from an ONNX model (ModelProto or path) or a dlc Graph."""
    if isinstance(model, Graph):
        graph = model.copy()
        if input_shapes:
            from dlc.graph.ir import TensorType

            for name, shape in input_shapes.items():
                if name not in graph.inputs:
                    raise DlcError(f"input_shapes names {name!r}, which is not an input; inputs "
                                   f"are {', '.join(graph.inputs)}")
                graph.types[name] = TensorType(tuple(shape), graph.types[name].dtype)
        return graph
    from dlc.frontends.onnx import from_onnx

    return from_onnx(model, input_shapes=input_shapes)


def run_graph_passes(graph: Graph) -> Graph:
    from dlc.tir.lower import run_passes as _unused  # noqa: F401  (keeps DLC_DUMP_IR docs)

    for pass_fn in GRAPH_PIPELINE:
        graph = pass_fn(graph)
    return graph


def compile(model, target=None, input_shapes=None, name: str | None = None):  # noqa: A001
    """Compile a model for ``target`` ("llvm", the default, is this CPU)."""
    from dlc.compiler.model import CompiledModel, DynamicModel

    target = Target.parse(target)
    start = time.perf_counter()
    graph = import_model(model, input_shapes)
    graph = infer_types(graph)
    if untyped_nodes(graph):
        return DynamicModel(graph, target)
    graph = run_graph_passes(graph)
    compiled = CompiledModel.from_graph(graph, target, name=name)
    compiled.compile_seconds = time.perf_counter() - start
    return compiled
