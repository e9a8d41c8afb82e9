"""Algorithm choices measured by the tuner: which convolutions run as Winograd.

The winograd_conv graph pass can compute an eligible convolution (3x3, stride 1, blocked
channels, constant weights) directly or as Winograd F(4x4, 3x3) or F(2x2, 3x3); without a
measurement its shape rule decides. Before it extracts the tasks, ``dlc tune`` measures
the three algorithms on the machine at hand for every distinct eligible convolution of its
models: the direct kernel, and each Winograd's three kernels, each kernel with its default
schedule and as it occurs in the model (the first occurrence, its fused epilogue
included).

Each algorithm is logged as a record of the convolution's *algorithm task*: key
``algorithm_key`` (the convolution's shapes, pads and bias), template ``conv_algorithm``,
config ``{"algorithm": "direct" | "winograd_4x4" | "winograd_2x2"}``, seconds the sum of its
kernels' medians in each of ``ROUNDS`` rounds (the algorithms' order rotating),
``default`` on the rule's pick. So ``best_records`` picks the faster algorithm like the
fastest configuration of any task, ``dlc report`` lists the choice with its speed-up over
the rule, and ``dlc compile --tuning-log`` (through ``chooser``) and the tuner's own task
extraction apply it. A resumed run keeps the choices its log holds. The choice is made on
default schedules; the tuned kernels of the chosen algorithm follow.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from dlc.autotune.task import KEY_VERSION, Task, task_of

TEMPLATE = "conv_algorithm"
#: algorithm -> the winograd_conv pass's choice (the output tile; 0: direct)
ALGORITHMS = {"direct": 0, "winograd_4x4": 4, "winograd_2x2": 2}
_BY_TILE = {tile: name for name, tile in ALGORITHMS.items()}
#: Rounds in which a convolution's algorithms are timed, their order rotating, so that a
#: slow spell of a noisy machine does not decide alone.
ROUNDS = 3
#: An algorithm record replays no schedule.
NO_TRACE = {"version": 1, "primitives": []}


def algorithm_key(graph, node) -> str:
    """The key of the algorithm task of an eligible convolution ``node`` of ``graph``."""
    text = json.dumps(_identity(graph, node), sort_keys=True)
    return hashlib.sha1(f"{KEY_VERSION}\n{TEMPLATE}\n{text}".encode()).hexdigest()


def _identity(graph, node) -> dict:
    x, w, y = (graph.types[node.inputs[0]], graph.types[node.inputs[1]],
               graph.types[node.outputs[0]])
    return {"op": node.op, "x": [list(x.shape), x.dtype], "w": list(w.shape),
            "y": list(y.shape), "pads": list(node.attrs.get("pads") or []),
            "bias": len(node.inputs) > 2 and bool(node.inputs[2])}


def workload(graph, node) -> dict:
    """What a user reads of an algorithm task (the shape of a tuning task's workload)."""
    ident = _identity(graph, node)
    inputs = [ident["x"], [ident["w"], ident["x"][1]]]
    return {"op": node.op, "template": TEMPLATE, "inputs": inputs,
            "outputs": [[ident["y"], ident["x"][1]]], "attrs": {"pads": ident["pads"]}}


def choices_chooser(choices: dict):
    """``choose(graph, node)`` from ``decide``'s algorithm key -> output tile (0: direct)."""
    return lambda graph, node: choices.get(algorithm_key(graph, node))


def chooser(tuning: dict):
    """``choose(graph, node)`` for the winograd_conv pass from a tuning log's best records
    (task key -> record): the measured algorithm's output tile (0: direct) where the log
    measured the convolution, else None (the pass's rule)."""
    return choices_chooser({key: ALGORITHMS.get(r["config"].get("algorithm"))
                            for key, r in tuning.items() if r.get("template") == TEMPLATE})


@dataclass
class Candidate:
    """One distinct eligible convolution: its algorithm task and, per algorithm, the
    tasks of the kernels computing it."""

    key: str
    workload: dict
    rule: str  # the algorithm the rule picks
    kernels: dict  # algorithm -> [Task]


def candidates(models, target, input_shapes=None, opt_level: int = 3) -> list:
    """The distinct eligible convolutions of ``models`` (first occurrences)."""
    from dlc.compile import import_model, run_graph_passes
    from dlc.graph.passes.infer_types import infer_types, untyped_nodes
    from dlc.graph.passes.winograd_conv import by_rule

    found: dict = {}
    for model in models:
        graph = infer_types(import_model(model, input_shapes))
        if untyped_nodes(graph):
            continue  # extract_tasks names the problem
        convs: dict = {}  # output tensor -> (key, workload, rule)

        def direct_noting(g, node, convs=convs):
            """Direct everywhere, noting each new eligible convolution on the way."""
            key = algorithm_key(g, node)
            if key not in found and all(key != k for k, _, _ in convs.values()):
                convs[node.outputs[0]] = (key, workload(g, node), _BY_TILE[by_rule(g, node)])
            return 0

        variants = {"direct": run_graph_passes(graph, opt_level, target, direct_noting)}
        if not convs:
            continue
        variants.update((a, run_graph_passes(graph, opt_level, target,
                                             lambda g, n, tile=tile: tile))
                        for a, tile in ALGORITHMS.items() if tile)
        for out, (key, wl, rule) in convs.items():
            kernels = {a: _kernel_tasks(variants[a], out, target) for a in ALGORITHMS}
            if all(kernels.values()):
                found[key] = Candidate(key, wl, rule, kernels)
    return list(found.values())


def _kernel_tasks(graph, tensor: str, target) -> list[Task]:
    """The tasks of the kernels that compute ``tensor`` (a convolution's output) in
    ``graph``: its kernel, and for Winograd the products' and input transform's before."""
    chain = []
    while True:
        found = _producer(graph, tensor)
        if found is None:
            return []
        kernel, node = found
        chain.append(kernel)
        if node.op not in ("WinogradOutputNCHWc", "WinogradGemmNCHWc"):
            break
        tensor = node.inputs[0]
    return [task_of(graph, kernel, target) for kernel in reversed(chain)]


def _producer(graph, tensor: str):
    """(kernel node, the node inside it) producing ``tensor``, or None."""
    for kernel in graph.nodes:
        inner = kernel.attrs["body"].nodes if kernel.op == "FusedGroup" else [kernel]
        for node in inner:
            if tensor in node.outputs:
                return kernel, node
    return None


def decide(found: list, records, target, threads: int, engine, seed: int) -> tuple:
    """Measure the algorithms of each candidate the log (``records``) has not measured:
    (algorithm key -> the chosen output tile (0: direct) for every candidate decided, the
    new records to log)."""
    import statistics

    from dlc.autotune.log import measured

    choices, new = {}, []
    for cand in found:
        logged = [r for r in measured(records, cand.key, target).values()
                  if r["config"].get("algorithm") in ALGORITHMS]
        if len(logged) < len(ALGORITHMS):
            logged = _measure(cand, target, threads, engine, seed)
            new.extend(logged)
        timed = [(statistics.median(r["seconds"]), r["config"]["algorithm"])
                 for r in logged if r["error"] is None]
        if timed:
            choices[cand.key] = ALGORITHMS[min(timed)[1]]
    return choices, new


def _measure(cand: Candidate, target, threads, engine, seed) -> list[dict]:
    """The records of the candidate's algorithms: their kernels' default schedules run
    one by one with cold caches (in a model, the other kernels evict what one kernel left
    in the caches: a warm repeated run favours the algorithm with more weights to read),
    in ROUNDS rounds with the algorithms' order rotating; seconds holds each round's sum
    (an algorithm whose kernel fails gets that error instead)."""
    from dlc.autotune.log import make_record

    names = list(ALGORITHMS)
    kernels = {a: [(t.lower(None, target)[0], t.inputs(seed), t.name)
                   for t in cand.kernels[a]] for a in names}
    totals: dict = {a: [] for a in names}
    errors: dict = {}
    for r in range(ROUNDS):
        for a in names[r % len(names):] + names[:r % len(names)]:
            if a in errors:
                continue
            total = 0.0
            for func, inputs, name in kernels[a]:
                result = engine.reference(func, inputs, cold=True)
                if result.error is not None:
                    errors[a] = {"class": result.error,
                                 "message": f"{name}: {result.message}"[:500]}
                    break
                total += result.median
            else:
                totals[a].append(total)
    return [make_record(cand.key, cand.workload, TEMPLATE, target, threads, {"algorithm": a},
                        NO_TRACE, [] if a in errors else totals[a], errors.get(a), seed,
                        default=a == cand.rule) for a in names]
