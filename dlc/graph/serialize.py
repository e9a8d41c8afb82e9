"""Save and load graphs: a JSON file for the structure and an .npz file for arrays.

Format (version 1), ``<path>`` holds::

    {"format": "dlc-graph", "version": 1, "graph": GRAPH}
    GRAPH = {"name": str, "inputs": [{"name", "shape", "dtype"}], "outputs": [str],
             "constants": {name: {"array": key}},
             "nodes": [{"op", "name", "inputs": [str], "outputs": [str], "attrs": {k: ATTR}}]}
    ATTR  = number | string | bool | [ATTR] | {"array": key} | {"graph": GRAPH}

and ``<path minus .json>.weights.npz`` holds every array by key.
"""

from __future__ import annotations

import json
import os

import numpy as np

from dlc.errors import ModelError
from dlc.graph.ir import Graph, Node, TensorType

FORMAT_VERSION = 1


def weights_path(path: str) -> str:
    base = path[:-5] if path.endswith(".json") else path
    return base + ".weights.npz"


def save_graph(graph: Graph, path) -> None:
    """Write ``path`` (JSON) and its ``.weights.npz`` companion."""
    path = os.fspath(path)
    arrays: dict = {}
    doc = {"format": "dlc-graph", "version": FORMAT_VERSION, "graph": _encode(graph, arrays)}
    tmp_json, tmp_npz = path + ".tmp", weights_path(path) + ".tmp.npz"
    with open(tmp_json, "w") as f:
        json.dump(doc, f, indent=1)
    np.savez(tmp_npz, **arrays)
    os.replace(tmp_npz, weights_path(path))
    os.replace(tmp_json, path)


def load_graph(path) -> Graph:
    path = os.fspath(path)
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read graph {path}: {err}") from None
    if doc.get("format") != "dlc-graph" or doc.get("version") != FORMAT_VERSION:
        raise ModelError(f"{path} is not a dlc graph (format version {FORMAT_VERSION})")
    try:
        with np.load(weights_path(path), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except OSError as err:
        raise ModelError(f"cannot read weights {weights_path(path)}: {err}") from None
    from dlc.graph.passes.infer_types import infer_types

    return infer_types(_decode(doc["graph"], arrays), fold=False)


def _encode(graph: Graph, arrays: dict) -> dict:
    def key(array):
        k = f"a{len(arrays)}"
        arrays[k] = np.asarray(array)
        return k

    def attr(v):
        if isinstance(v, Graph):
            return {"graph": _encode(v, arrays)}
        if isinstance(v, np.ndarray):
            return {"array": key(v)}
        if isinstance(v, (list, tuple)):
            return [attr(x) for x in v]
        if isinstance(v, (np.integer, np.floating)):
            return v.item()
        return v

    return {
        "name": graph.name,
        "inputs": [{"name": n, "shape": list(graph.types[n].shape),
                    "dtype": graph.types[n].dtype} for n in graph.inputs],
        "outputs": list(graph.outputs),
        "constants": {n: {"array": key(v)} for n, v in graph.constants.items()},
        "nodes": [{"op": nd.op, "name": nd.name, "inputs": list(nd.inputs),
                   "outputs": list(nd.outputs),
                   "attrs": {k: attr(v) for k, v in nd.attrs.items()}} for nd in graph.nodes],
    }


def _decode(doc: dict, arrays: dict) -> Graph:
    def attr(v):
        if isinstance(v, dict) and "graph" in v:
            return _decode(v["graph"], arrays)
        if isinstance(v, dict) and "array" in v:
            return arrays[v["array"]]
        if isinstance(v, list):
            return [attr(x) for x in v]
        return v

    try:
        g = Graph(doc["name"], [i["name"] for i in doc["inputs"]], list(doc["outputs"]))
        for i in doc["inputs"]:
            g.types[i["name"]] = TensorType(tuple(i["shape"]), i["dtype"])
        for name, ref in doc["constants"].items():
            g.constants[name] = arrays[ref["array"]]
            g.types[name] = TensorType.of(g.constants[name])
        for nd in doc["nodes"]:
            g.nodes.append(Node(nd["op"], tuple(nd["inputs"]), tuple(nd["outputs"]),
                                {k: attr(v) for k, v in nd["attrs"].items()}, nd["name"]))
    except (KeyError, TypeError) as err:
        raise ModelError(f"malformed graph file: missing or bad field {err}") from None
    return g
