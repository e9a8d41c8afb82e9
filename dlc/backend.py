"""ONNX's standard backend API (onnx.backend.base), so ONNX's own tools can drive dlc.

    import dlc.backend as backend
    rep = backend.prepare(model, "CPU")
    outputs = rep.run([x])
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from onnx.backend.base import Backend, BackendRep

from dlc.errors import DlcError


class DlcRep(BackendRep):
    """A prepared (compiled) model."""

    def __init__(self, compiled):
        self.compiled = compiled

    def run(self, inputs, **kwargs):
        if isinstance(inputs, dict):
            outputs = self.compiled.run(inputs)
        else:
            if isinstance(inputs, np.ndarray):
                inputs = [inputs]
            outputs = self.compiled.run(*list(inputs))
        names = [_field(n, k) for k, n in enumerate(self.compiled.output_names)]
        return namedtuple("Outputs", names, rename=True)(*outputs)


def _field(name: str, k: int) -> str:
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return text if text and text[0].isalpha() else f"output_{k}"


class DlcBackend(Backend):
    @classmethod
    def is_compatible(cls, model, device: str = "CPU", **kwargs) -> bool:
        return cls.supports_device(device)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return str(device).upper().startswith("CPU")

    @classmethod
    def prepare(cls, model, device: str = "CPU", **kwargs):
        if not cls.supports_device(device):
            raise DlcError(f"dlc's ONNX backend runs on CPU; device {device!r} is not supported")
        import dlc

        target = kwargs.get("target", "llvm")
        return DlcRep(dlc.compile(model, target=target, input_shapes=kwargs.get("input_shapes")))

    @classmethod
    def run_model(cls, model, inputs, device: str = "CPU", **kwargs):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node, inputs, device: str = "CPU", outputs_info=None, **kwargs):
        """Run a single NodeProto on inputs (a list of arrays, in the node's input order)."""
        from onnx import helper

        from dlc.frontends.onnx.types import onnx_elem_type

        arrays = [np.asarray(x) for x in inputs]
        graph_inputs = [helper.make_tensor_value_info(name, onnx_elem_type(str(a.dtype)),
                                                      list(a.shape))
                        for name, a in zip(node.input, arrays) if name]
        graph_outputs = [helper.make_empty_tensor_value_info(name) for name in node.output]
        opset = kwargs.get("opset_version")
        graph = helper.make_graph([node], "run_node", graph_inputs, graph_outputs)
        opsets = [helper.make_opsetid("", opset)] if opset else None
        model = helper.make_model(graph, opset_imports=opsets)
        feed = {name: a for name, a in zip(node.input, arrays) if name}
        return cls.prepare(model, device, **kwargs).run(feed)


prepare = DlcBackend.prepare
run_model = DlcBackend.run_model
run_node = DlcBackend.run_node
supports_device = DlcBackend.supports_device
