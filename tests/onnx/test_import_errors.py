"""Malformed models, unsupported ops and bad run-time inputs give typed, clear errors."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def _add_relu(opset=17):
    return _model([helper.make_node("Add", ["x", "y"], ["s"], name="add0"),
                   helper.make_node("Relu", ["s"], ["r"], name="relu0")],
                  [_vi("x", [2, 3]), _vi("y", [3])], [_vi("r", [2, 3])], opset=opset)


def test_valid_model_runs():
    m = dlc.compile(_add_relu())
    x = np.random.rand(2, 3).astype(np.float32) - 0.5
    y = np.random.rand(3).astype(np.float32) - 0.5
    (r,) = m.run(x, y)
    np.testing.assert_allclose(r, np.maximum(x + y, 0))


def test_truncated_bytes():
    data = _add_relu().SerializeToString()
    with pytest.raises(dlc.ModelError, match="not a valid ONNX model"):
        dlc.compile(data[: len(data) // 2])


def test_not_a_model(tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(dlc.ModelError):
        dlc.compile(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(dlc.ModelError, match="no such file"):
        dlc.compile(str(tmp_path / "absent.onnx"))


def test_missing_initializer_names_the_node():
    m = _model([helper.make_node("Add", ["x", "w"], ["s"], name="uses_w")],
               [_vi("x", [2])], [_vi("s", [2])])
    with pytest.raises(dlc.ModelError, match="uses_w.*'w'"):
        dlc.compile(m)


def test_dangling_output():
    m = _model([helper.make_node("Relu", ["x"], ["r"], name="relu0")],
               [_vi("x", [2])], [_vi("nowhere", [2])])
    with pytest.raises(dlc.ModelError, match="nowhere"):
        dlc.compile(m)


def test_cycle():
    m = _model([helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
                helper.make_node("Relu", ["a"], ["b"], name="n2")],
               [_vi("x", [2])], [_vi("b", [2])])
    with pytest.raises(dlc.ModelError, match="cycle"):
        dlc.compile(m)


def test_tensor_produced_twice():
    m = _model([helper.make_node("Relu", ["x"], ["r"], name="n1"),
                helper.make_node("Relu", ["x"], ["r"], name="n2")],
               [_vi("x", [2])], [_vi("r", [2])])
    with pytest.raises(dlc.ModelError, match="produced twice"):
        dlc.compile(m)


def test_wrong_attribute_type_names_the_node():
    node = helper.make_node("LeakyRelu", ["x"], ["r"], name="leaky")
    node.attribute.append(helper.make_attribute("alpha", "oops"))
    m = _model([node], [_vi("x", [2])], [_vi("r", [2])])
    with pytest.raises(dlc.ModelError, match="leaky.*alpha"):
        dlc.compile(m)


def test_unsupported_ops_are_all_listed_before_compiling():
    m = _model([helper.make_node("FancyOpA", ["x"], ["a"], name="a1"),
                helper.make_node("FancyOpB", ["a"], ["b"], name="b1"),
                helper.make_node("FancyOpA", ["b"], ["c"], name="a2")],
               [_vi("x", [2])], [_vi("c", [2])])
    with pytest.raises(dlc.UnsupportedOpError) as info:
        dlc.compile(m)
    text = str(info.value)
    assert "2 unsupported operator type(s)" in text
    assert "FancyOpA (opset 17): a1, a2" in text
    assert "FancyOpB (opset 17): b1" in text


def test_unknown_domain_is_unsupported():
    node = helper.make_node("Thing", ["x"], ["r"], name="t", domain="com.example")
    m = _model([node], [_vi("x", [2])], [_vi("r", [2])])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(dlc.UnsupportedOpError, match="com.example.Thing"):
        dlc.compile(m)


def test_explicit_unknown_attribute_is_rejected():
    node = helper.make_node("Relu", ["x"], ["r"], name="r0", bogus=3)
    m = _model([node], [_vi("x", [2])], [_vi("r", [2])])
    with pytest.raises(dlc.DlcError, match="bogus"):
        dlc.compile(m)


def test_symbolic_dimension_needs_input_shapes():
    m = _model([helper.make_node("Relu", ["x"], ["r"])],
               [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
               [helper.make_tensor_value_info("r", TensorProto.FLOAT, ["batch", 3])])
    with pytest.raises(dlc.ModelError, match="'x'.*batch.*input_shapes"):
        dlc.compile(m)
    compiled = dlc.compile(m, input_shapes={"x": (4, 3)})
    x = np.random.rand(4, 3).astype(np.float32) - 0.5
    np.testing.assert_allclose(compiled.run(x)[0], np.maximum(x, 0))


def test_input_shapes_unknown_name():
    with pytest.raises(dlc.ModelError, match="nope"):
        dlc.compile(_add_relu(), input_shapes={"nope": (1,)})


def test_initializer_listed_as_input_is_a_constant():
    w = helper.make_tensor("w", TensorProto.FLOAT, [2], [1.0, -5.0])
    m = _model([helper.make_node("Add", ["x", "w"], ["s"])],
               [_vi("x", [2]), _vi("w", [2])], [_vi("s", [2])], initializers=[w])
    compiled = dlc.compile(m)
    assert compiled.input_names == ["x"]
    np.testing.assert_allclose(compiled.run(np.ones(2, np.float32))[0], [2.0, -4.0])


@pytest.mark.parametrize("call, message", [
    (lambda m: m.run(np.ones((2, 3), np.float32)), "takes 2 input"),
    (lambda m: m.run(np.ones((2, 3), np.float64), np.ones(3, np.float32)), "dtype float32"),
    (lambda m: m.run(np.ones((3, 3), np.float32), np.ones(3, np.float32)), r"shape \(2, 3\)"),
    (lambda m: m.run({"x": np.ones((2, 3), np.float32), "z": 1}), "unknown input name"),
    (lambda m: m.run({"x": np.ones((2, 3), np.float32)}), "missing input"),
])
def test_bad_runtime_inputs(call, message):
    m = dlc.compile(_add_relu())
    with pytest.raises(dlc.ArgumentError, match=message):
        call(m)


def test_non_contiguous_inputs_are_copied():
    m = dlc.compile(_add_relu())
    x = np.random.rand(3, 2).astype(np.float32).T
    y = np.random.rand(3).astype(np.float32)
    np.testing.assert_allclose(m.run(x, y)[0], np.maximum(x + y, 0))


def test_outputs_do_not_alias_between_runs():
    m = dlc.compile(_add_relu())
    x, y = np.ones((2, 3), np.float32), np.ones(3, np.float32)
    first = m.run(x, y)[0]
    second = m.run(2 * x, y)[0]
    assert not np.shares_memory(first, second)
    np.testing.assert_allclose(first, 2.0)
