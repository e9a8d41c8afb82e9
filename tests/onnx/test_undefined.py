"""dlc.frontends.onnx.undefined: which expected outputs the spec leaves undefined, and how
the conformance harness reports a case that has some."""

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

from dlc.frontends.onnx import conformance
from dlc.frontends.onnx.undefined import undefined_elements

NAN, INF = np.nan, np.inf


def _model(nodes, inputs, outputs):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])


def _cast_model(src, dst, n):
    return _model([helper.make_node("Cast", ["x"], ["y"], to=dst)],
                  [helper.make_tensor_value_info("x", src, [n])],
                  [helper.make_tensor_value_info("y", dst, [n])])


@pytest.mark.parametrize("dst, want", [
    (T.INT4, [True, False, False, True, True, True, False]),
    (T.UINT4, [True, False, False, False, True, True, True]),  # -0.5 truncates to 0
    (T.INT8, [False, False, False, False, True, True, False]),
    (T.UINT8, [True, False, False, False, True, True, True]),
])
def test_float_to_integer_out_of_range(dst, want):
    x = np.array([-9.0, -0.5, 7.9, 8.0, NAN, INF, -3.0], np.float32)
    (found,) = undefined_elements(_cast_model(T.FLOAT, dst, 7), [x])
    assert found.index == 0
    np.testing.assert_array_equal(found.mask, want)
    assert "float32 values out of" in found.describe()


def test_int64_limits_are_exact():
    """2**63 - 1 rounds to 2**63 in float64, which is out of int64's range."""
    x = np.array([2.0**63, -(2.0**63), 2.0**62], np.float64)
    (found,) = undefined_elements(_cast_model(T.DOUBLE, T.INT64, 3), [x])
    np.testing.assert_array_equal(found.mask, [True, False, False])


@pytest.mark.parametrize("src, dst, x", [
    (T.INT32, T.INT4, np.array([-9, 100, 3], np.int32)),        # integers wrap: defined
    (T.FLOAT, T.FLOAT16, np.array([1e6, NAN, -INF], np.float32)),  # overflow to inf: defined
    (T.FLOAT, T.INT4, np.array([-8.0, 7.9, 0.0], np.float32)),  # all in range
])
def test_defined_casts_have_nothing_undefined(src, dst, x):
    assert undefined_elements(_cast_model(src, dst, 3), [x]) == []


def test_castlike_and_identity_are_followed_other_ops_are_not():
    vi = helper.make_tensor_value_info
    model = _model([helper.make_node("CastLike", ["x", "like"], ["c"]),
                    helper.make_node("Identity", ["c"], ["y"]),
                    helper.make_node("Relu", ["x"], ["r"])],
                   [vi("x", T.FLOAT, [2]), vi("like", T.UINT2, [0])],
                   [vi("y", T.UINT2, [2]), vi("r", T.FLOAT, [2])])
    x = np.array([5.0, 1.0], np.float32)
    like = np.zeros(0, np.uint8)  # stands in for uint2: only the dtype is read
    import ml_dtypes

    (found,) = undefined_elements(model, [x, like.view(ml_dtypes.uint2)])
    assert found.index == 0
    np.testing.assert_array_equal(found.mask, [True, False])


def _case(expected):
    model = _cast_model(T.FLOAT, T.INT8, 4)
    case = conformance.Case("test_undefined_cast", "node", model=model)
    case.data_sets = [([np.array([1.5, 300.0, NAN, -2.5], np.float32)],
                       [np.array(expected, np.int8)])]
    return case


def test_harness_reports_undefined_apart_and_compares_the_rest():
    """Whatever the expected data holds where the spec is silent (300 and NaN here), the
    case is 'undefined', never 'pass'; a wrong defined element is still a wrong result."""
    status, detail, _ = conformance._classify(_case([1, 44, -7, -2]))
    assert status == "undefined"
    assert detail == "output 0: 2 of 4 elements are float32 values out of int8's range " \
                     "(undefined by the spec)"
    status, detail, _ = conformance._classify(_case([1, 44, -7, -3]))
    assert (status, detail.split(":")[0]) == ("fail", "wrong result")


def test_support_doc_counts_undefined_apart(tmp_path):
    from dlc.frontends.onnx.support_doc import write_support_doc

    relu = conformance.Case("test_relu", "node", model=_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [helper.make_tensor_value_info("x", T.FLOAT, [1])],
        [helper.make_tensor_value_info("y", T.FLOAT, [1])]))
    cast = _case([1, 44, -7, -2])
    results = [(relu, "pass", "", 0.0), (cast, "undefined", "output 0: 2 of 4 ...", 0.0)]
    text = open(write_support_doc(results, str(tmp_path / "support.md"))).read()
    assert "**1 of 2 in-scope cases pass (50.0%).** 1 more match on every element" in text
    assert "| Cast | 0 | 1 | 0 | 0 |" in text and "| Relu | 1 | 0 | 0 | 0 |" in text
    assert "| test_undefined_cast | output 0: 2 of 4 ... |" in text
    assert "| NaN | 0 |" in text  # dlc's choice is documented next to the list
