"""Function expansion (frontends/onnx/functions.py): model-local functions whose bodies
have subgraphs that read the function's values and refer to its attributes."""

import numpy as np
from onnx import TensorProto, helper

import dlc


def _model_with_function(scale_attr=None):
    """``AddScaled(x, c) = If(c, then: x * k, else: x - k)`` with ``k`` a body value that
    only the branches read; the then-branch's Constant refers to attribute ``scale``."""
    f32 = TensorProto.FLOAT
    from onnx import AttributeProto

    scale = helper.make_node("Constant", [], ["s"])
    scale.attribute.append(helper.make_attribute_ref("value_float", AttributeProto.FLOAT,
                                                     ref_attr_name="scale"))
    then_g = helper.make_graph(
        [scale, helper.make_node("Mul", ["k", "s"], ["t0"]),
         helper.make_node("Mul", ["x", "t0"], ["t"])], "then", [],
        [helper.make_tensor_value_info("t", f32, None)])
    else_g = helper.make_graph([helper.make_node("Sub", ["x", "k"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", f32, None)])
    body = [helper.make_node("Constant", [], ["k"], value_float=2.0),
            helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)]
    fn = helper.make_function("local", "AddScaled", ["x", "c"], ["y"], body,
                              [helper.make_opsetid("", 18)], attributes=["scale"])
    call = helper.make_node("AddScaled", ["x", "c"], ["y"], domain="local",
                            **({"scale": scale_attr} if scale_attr is not None else {}))
    graph = helper.make_graph([call], "g", [helper.make_tensor_value_info("x", f32, [3]),
                                            helper.make_tensor_value_info("c", TensorProto.BOOL,
                                                                          [])],
                              [helper.make_tensor_value_info("y", f32, [3])])
    return helper.make_model(graph, functions=[fn],
                             opset_imports=[helper.make_opsetid("", 18),
                                            helper.make_opsetid("local", 1)])


def test_function_subgraphs_read_body_values_and_attributes():
    model = dlc.compile(_model_with_function(scale_attr=3.0))
    x = np.array([1.0, 2.0, -1.0], np.float32)
    np.testing.assert_allclose(model.run(x, np.array(True))[0], x * 6.0)
    np.testing.assert_allclose(model.run(x, np.array(False))[0], x - 2.0)
