"""The high-level graph IR: a topologically ordered list of operator nodes over named
tensors. Edges are names (one producer per name), so graphs are plain data that passes
copy and rebuild, and that serialize to JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlc import dtypes
from dlc.errors import ModelError


@dataclass(frozen=True)
class TensorType:
    """Static shape and dtype of a tensor."""

    shape: tuple
    dtype: str

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", dtypes.canonical(self.dtype))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * dtypes.itemsize(self.dtype)

    def __str__(self) -> str:
        return f"{self.dtype}[{', '.join(str(d) for d in self.shape)}]"

    @staticmethod
    def of(array: np.ndarray) -> TensorType:
        return TensorType(array.shape, dtypes.canonical(array.dtype))


@dataclass(frozen=True, eq=False)
class Node:
    """One operator application. ``inputs`` may contain "" for omitted optional inputs;
    ``attrs`` hold numbers, strings, lists, NumPy arrays or Graphs (control flow bodies)."""

    op: str
    inputs: tuple
    outputs: tuple
    attrs: dict = field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))

    def with_(self, **changes) -> Node:
        data = {"op": self.op, "inputs": self.inputs, "outputs": self.outputs,
                "attrs": self.attrs, "name": self.name}
        data.update(changes)
        return Node(**data)


@dataclass
class Graph:
    """A computation: ``inputs`` (names with types), ``nodes`` in topological order,
    ``constants`` (name -> array) and ``outputs`` (names). ``types`` maps every known
    tensor name to its TensorType."""

    name: str
    inputs: list
    outputs: list
    nodes: list = field(default_factory=list)
    constants: dict = field(default_factory=dict)
    types: dict = field(default_factory=dict)

    def copy(self) -> Graph:
        return Graph(self.name, list(self.inputs), list(self.outputs), list(self.nodes),
                     dict(self.constants), dict(self.types))

    def type_of(self, name: str) -> TensorType:
        try:
            return self.types[name]
        except KeyError:
            raise ModelError(f"tensor {name!r} has no known type") from None

    def producers(self) -> dict:
        """Tensor name -> the node that produces it."""
        return {out: node for node in self.nodes for out in node.outputs if out}

    def consumers(self) -> dict:
        """Tensor name -> list of nodes that read it (graph outputs are not nodes)."""
        users: dict = {}
        for node in self.nodes:
            for name in node.inputs:
                if name:
                    users.setdefault(name, []).append(node)
        return users

    def __str__(self) -> str:
        from dlc.graph.printer import graph_to_str

        return graph_to_str(self)
