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
    arena = 0
    for kernel in kernels:
        for name in kernel.args:
            if name not in locations:
                t = graph.types[name]
                locations[name] = ["arena", arena]
                arena = _align(arena + max(t.size * dtypes.itemsize(t.dtype), 1))
    return locations, blob, arena


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
