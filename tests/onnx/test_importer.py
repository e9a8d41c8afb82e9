"""dlc.frontends.onnx.importer: what the imported graph keeps of the ONNX model."""

from onnx import TensorProto as T
from onnx import helper

from dlc.frontends.onnx import from_onnx


def test_if_keeps_its_name_after_its_branches_are_converted():
    """Converting a branch converts its nodes; the If emitted after them is still named
    after the If (it used to take the last branch node's generated name)."""
    def branch(name):
        out = helper.make_tensor_value_info(name, T.FLOAT, [1])
        const = helper.make_node("Constant", [], [name],
                                 value=helper.make_tensor("v", T.FLOAT, [1], [1.0]))
        return helper.make_graph([const], name, [], [out])

    nodes = [helper.make_node("If", ["c"], ["y"], name="choose", then_branch=branch("t"),
                              else_branch=branch("e")),
             helper.make_node("If", ["c"], ["z"], then_branch=branch("t2"),
                              else_branch=branch("e2"))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("c", T.BOOL, [])],
                              [helper.make_tensor_value_info("y", T.FLOAT, [1]),
                               helper.make_tensor_value_info("z", T.FLOAT, [1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    names = [(n.op, n.name) for n in from_onnx(model).nodes]
    assert names == [("If", "choose"), ("If", "If_1")]
