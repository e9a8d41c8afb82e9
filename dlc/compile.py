"""``dlc.compile``: the whole pipeline as one function of named stages.

    model (ONNX ModelProto, path, or dlc Graph)
      -> import_model        graph IR with concrete input shapes
      -> infer_types         types everywhere, constant shape computations folded
      -> GRAPH_PIPELINE      graph passes
      -> lower_graph         per node: tensor expressions + schedule (default or tuned) + loop IR
      -> build_funcs         LLVM: kernels + an entry function that calls them in order
      -> CompiledModel       run with NumPy arrays
"""

from __future__ import annotations

import time

from dlc.errors import DlcError
from dlc.graph.ir import Graph
from dlc.graph.passes.alter_conv_layout import alter_conv_layout
from dlc.graph.passes.eliminate_common_subexpressions import eliminate_common_subexpressions
from dlc.graph.passes.eliminate_dead_nodes import eliminate_dead_nodes
from dlc.graph.passes.fold_batchnorm import fold_batchnorm
from dlc.graph.passes.fold_constants import fold_constants
from dlc.graph.passes.fold_scales import fold_scales
from dlc.graph.passes.fuse_ops import fuse_ops
from dlc.graph.passes.infer_types import infer_types, untyped_nodes
from dlc.graph.passes.pack_dense_weights import pack_dense_weights
from dlc.graph.passes.recognize_reductions import recognize_reductions
from dlc.graph.passes.simplify_algebra import simplify_algebra
from dlc.graph.passes.winograd_conv import winograd_conv
from dlc.target import Target

#: Graph passes run before lowering, in order, each with the lowest ``opt_level`` that
#: runs it: 1 cleanups, 2 fusion, 3 layout changes (before fusion, so that convolutions
#: absorb their epilogues in the new layout).
GRAPH_PIPELINE: list = [  # [(level, pass_fn)]
    (1, fold_constants),
    (1, simplify_algebra),
    (1, recognize_reductions),
    (1, fold_batchnorm),
    (1, fold_scales),
    (1, eliminate_common_subexpressions),
    (1, eliminate_dead_nodes),
    (3, alter_conv_layout),
    (3, winograd_conv),
    (3, pack_dense_weights),
    (2, fuse_ops),
]


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


#: The passes whose result depends on the target (layout and panel widths follow its
#: vector width); they take it as a second argument.
TARGET_PASSES = (alter_conv_layout, pack_dense_weights)


def run_graph_passes(graph: Graph, opt_level: int = 3, target: Target | None = None,
                     choose_algorithm=None) -> Graph:
    """Run the GRAPH_PIPELINE passes enabled at ``opt_level`` for ``target`` (default: the
    host CPU); with DLC_DUMP_IR=dir, write the graph after each ("(unchanged)" when a pass
    did nothing). ``choose_algorithm(graph, node)`` decides which convolutions use
    Winograd (True, False, or None for the pass's rule; see dlc.autotune.algorithms)."""
    from dlc import env

    target = Target.parse(target)
    dump = env.dump_ir_dir()
    for k, (level, pass_fn) in enumerate(GRAPH_PIPELINE):
        if level > opt_level:
            continue
        if pass_fn in TARGET_PASSES:
            new = pass_fn(graph, target)
        elif pass_fn is winograd_conv:
            new = pass_fn(graph, choose_algorithm)
        else:
            new = pass_fn(graph)
        if dump:
            env.write_dump(f"{graph.name}.graph.{k:02d}.{pass_fn.__name__}.txt",
                           "(unchanged)\n" if new is graph else str(new) + "\n")
        graph = new
    return graph


def tuning_records(tuning_log, target: Target) -> dict:
    """Task key -> the best record of ``tuning_log`` for ``target``; the records it ignores
    (another CPU, an old schema) are named in one DlcWarning line per reason."""
    import warnings

    from dlc.autotune.log import best_records
    from dlc.errors import DlcWarning

    best, reasons = best_records(tuning_log, target)
    for reason in reasons:
        warnings.warn(f"{tuning_log}: {reason}", DlcWarning, stacklevel=3)
    return best


def algorithm_chooser(tuning: dict | None):
    """The algorithm choices of a tuning log's records (None without a log)."""
    if not tuning:
        return None
    from dlc.autotune.algorithms import chooser

    return chooser(tuning)


def compile(model, target=None, input_shapes=None, name: str | None = None,  # noqa: A001
            tuning_log=None, progress=None, opt_level: int = 3):
    """Compile a model for ``target`` ("llvm", the default, is this CPU).

    ``input_shapes`` gives concrete shapes for inputs with symbolic dimensions;
    ``tuning_log`` (a JSONL file) supplies measured schedules that replace the defaults;
    ``progress(done, total, what)`` reports the long steps (each kernel lowered, then the
    native code compiled: ``done`` runs from 0 to ``total`` for each ``what``); ``opt_level``
    (0-3) selects the graph passes (0: none, each node its own kernel).
    """
    if opt_level not in (0, 1, 2, 3):
        raise DlcError(f"opt_level must be 0, 1, 2 or 3, got {opt_level!r}")
    from dlc.compiler.model import CompiledModel, DynamicModel

    target = Target.parse(target).check_available()
    tuning = tuning_records(tuning_log, target) if tuning_log else None
    start = time.perf_counter()
    source = import_model(model, input_shapes)
    graph = infer_types(source)
    if untyped_nodes(graph):
        return DynamicModel(graph, target, tuning)
    graph = run_graph_passes(graph, opt_level, target, algorithm_chooser(tuning))
    compiled = CompiledModel.from_graph(graph, target, name=name, tuning=tuning,
                                        progress=progress)
    compiled.source_graph = source
    compiled.compile_seconds = time.perf_counter() - start
    return compiled


def inspect_stage(model, stage: str, input_shapes=None, target=None,
                  opt_level: int = 3, tuning_log=None) -> str:
    """Text of a model at a pipeline stage: "graph" (imported, typed), "fused" (after the
    graph passes), "loops" (loop IR of every kernel, with the schedules of ``tuning_log``
    where it has some) or "llvm" (LLVM IR)."""
    from dlc.compiler.kernels import lower_graph

    target = Target.parse(target).check_available()
    tuning = tuning_records(tuning_log, target) if tuning_log else None
    graph = infer_types(import_model(model, input_shapes))
    if stage == "graph":
        return str(graph)
    if untyped_nodes(graph):
        raise DlcError("this model's types depend on run-time values; only --stage graph "
                       "can be shown")
    graph = run_graph_passes(graph, opt_level, target, algorithm_chooser(tuning))
    if stage == "fused":
        return str(graph)
    kernels = lower_graph(graph, target, tuning)
    if stage == "loops":
        return "\n\n".join(str(k.func) for k in kernels)
    if stage == "llvm":
        from dlc.build import build_funcs

        module = build_funcs([k.func for k in kernels], target)
        return module.get_source("ll")
    raise DlcError(f"unknown stage {stage!r}; expected graph, fused, loops or llvm")
