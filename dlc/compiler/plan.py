"""Where every tensor lives while a compiled graph runs, and the order of kernel calls.

Locations: a graph input (by position), a graph output (by position), the weights blob
(byte offset) or the arena of intermediates (byte offset). The plan is plain JSON-able
data so that the runtime can execute it without the compiler.
"""

from __future__ import annotations

import numpy as np

from dlc import dtypes
from dlc.graph.ir import Graph

ALIGN = 64


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def assign_locations(graph: Graph, kernels) -> tuple[dict, np.ndarray, int]:
    """Map tensor names to locations; returns (locations, weights blob, arena bytes)."""
    locations: dict = {}
    for k, name in enumerate(graph.inputs):
        locations[name] = ["input", k]
    for k, name in enumerate(graph.outputs):
        if name not in locations and name not in graph.constants:
            locations[name] = ["output", k]
    used = {name for kernel in kernels for name in kernel.args}
    weights_size = 0
    weight_offsets = {}
    for name, value in graph.constants.items():
        if name in used and name not in locations:
            weight_offsets[name] = weights_size
            locations[name] = ["weights", weights_size]
            weights_size = _align(weights_size + max(value.nbytes, 1))
    blob = np.zeros(max(weights_size, ALIGN), dtype=np.uint8)
    for name, offset in weight_offsets.items():
        value = graph.constants[name]
        blob[offset:offset + value.nbytes] = np.frombuffer(value.tobytes(), dtype=np.uint8)
    intervals = lifetimes(graph, kernels, locations)
    offsets, arena = plan_arena(intervals)
    for name, offset in offsets.items():
        locations[name] = ["arena", offset]
    return locations, blob, arena


def lifetimes(graph: Graph, kernels, locations: dict) -> dict:
    """Arena tensors -> (first kernel, last kernel, bytes)."""
    spans: dict = {}
    for k, kernel in enumerate(kernels):
        for name in kernel.args:
            if name in locations:
                continue
            t = graph.types[name]
            size = _align(max(t.size * dtypes.itemsize(t.dtype), 1))
            first, _, _ = spans.get(name, (k, k, size))
            spans[name] = (first, k, size)
    return spans


def plan_arena(spans: dict) -> tuple[dict, int]:
    """Offsets for tensors with lifetimes: two tensors share bytes only if no kernel uses
    both. Greedy by size: largest first, each at the lowest offset that does not overlap
    a placed tensor whose lifetime intersects its own."""
    placed: list = []  # (offset, size, first, last)
    offsets = {}
    for name, (first, last, size) in sorted(spans.items(),
                                            key=lambda kv: (-kv[1][2], kv[1][0], kv[0])):
        conflicts = sorted((o, sz) for o, sz, f, lst in placed if f <= last and first <= lst)
        offset = 0
        for o, sz in conflicts:
            if offset + size <= o:
                break
            offset = max(offset, o + sz)
        placed.append((offset, size, first, last))
        offsets[name] = offset
    arena = max((o + sz for o, sz, _, _ in placed), default=0)
    return offsets, arena


def memory_report(spans: dict, arena: int) -> dict:
    return {"arena_bytes": arena,
            "without_reuse_bytes": sum(size for _, _, size in spans.values()),
            "tensors": len(spans)}


def output_copies(graph: Graph, locations: dict) -> list:
    """Outputs not written by a kernel: [output index, source location or constant name]."""
    copies = []
    for k, name in enumerate(graph.outputs):
        loc = locations.get(name)
        if loc == ["output", k]:
            continue
        if name in graph.constants:
            copies.append([k, ["constant", name]])
        else:
            copies.append([k, loc])
    return copies
