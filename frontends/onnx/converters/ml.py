"""Classical machine-learning operators: the ai.onnx.ml domain (numeric tensors only) and
TfIdfVectorizer (opset 9, integer tokens).

LabelEncoder: version 1 maps strings only; 2 adds numeric keys and values as lists; 4
adds them as tensors (a superset, one dlc op). TreeEnsemble is ai.onnx.ml opset 5.
"""

from dlc.errors import UnsupportedOpError
from dlc.frontends.onnx.registry import converter, passthrough

_ML = "ai.onnx.ml"

passthrough("Binarizer", since=1, domain=_ML)
passthrough("ArrayFeatureExtractor", since=1, domain=_ML)
passthrough("TreeEnsemble", since=5, domain=_ML)
passthrough("TfIdfVectorizer", since=9)


@converter("LabelEncoder", since=2, domain=_ML)
def label_encoder(cx, node):
    strings = [a.name for a in node.attribute if a.name in ("keys_strings", "values_strings")
               or a.type == 4 and a.t.data_type == 8]
    if strings:
        raise UnsupportedOpError(f"LabelEncoder node {node.name!r}: string keys or values "
                                 f"({', '.join(strings)}) are not supported (string tensors)")
    cx.emit("LabelEncoder", node.input, node.output, cx.attributes(node, "LabelEncoder"))
