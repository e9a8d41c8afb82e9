"""The graph IR: graphs of operators over named tensors, a builder, passes, a printer,
a verifier, a NumPy interpreter and a JSON + weights file format."""

from dlc.graph.builder import GraphBuilder, Sym, ops  # noqa: F401
from dlc.graph.interpreter import run_graph  # noqa: F401
from dlc.graph.ir import Graph, Node, TensorType  # noqa: F401
from dlc.graph.serialize import load_graph, save_graph  # noqa: F401
from dlc.graph.verify import verify  # noqa: F401
