"""Text form of graphs: one line per node with attributes and output types."""

from __future__ import annotations

import numpy as np

from dlc.graph.ir import Graph

_MAX_INLINE = 8


def _attr(value) -> str:
    if isinstance(value, Graph):
        return f"<graph {value.name}>"
    if isinstance(value, np.ndarray):
        if value.size <= _MAX_INLINE:
            return f"array({value.tolist()}, {value.dtype})"
        return f"array(<{value.dtype}{list(value.shape)}>)"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_attr(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def graph_to_str(g: Graph, indent: str = "") -> str:
    ins = ", ".join(f"{n}: {g.types[n]}" if n in g.types else n for n in g.inputs)
    lines = [f"{indent}graph {g.name}({ins}):"]
    for name, value in g.constants.items():
        lines.append(f"{indent}  {name} = constant {g.types.get(name, '')}"
                     + (f" {value.tolist()}" if value.size <= _MAX_INLINE else ""))
    for node in g.nodes:
        args = ", ".join(node.inputs)
        attrs = ""
        if node.attrs:
            attrs = " {" + ", ".join(f"{k}={_attr(v)}" for k, v in sorted(node.attrs.items())) + "}"
        outs = ", ".join(node.outputs)
        types = ", ".join(str(g.types[o]) if o in g.types else "?" for o in node.outputs)
        lines.append(f"{indent}  {outs} = {node.op}({args}){attrs} : {types}")
        for value in node.attrs.values():
            if isinstance(value, Graph):
                lines.append(graph_to_str(value, indent + "    "))
    lines.append(f"{indent}  return {', '.join(g.outputs)}")
    return "\n".join(lines)
