"""Small example models that can be produced on a fresh machine (no PyTorch needed):
``python -m dlc.examples.mlp model.onnx``."""
