"""The ONNX frontend: ``from_onnx(model)`` returns a dlc Graph."""

from dlc.frontends.onnx.importer import from_onnx, load_model  # noqa: F401
