"""ONNX's node test cases and data suites through dlc.backend (ONNX's tolerances).

Cases listed in expected_pass.txt must pass; the others are expected failures with the
reason recorded in docs/onnx_support.md (regenerate both with
``python -m dlc.frontends.onnx.conformance --update``).
"""

import pytest

from dlc.frontends.onnx import conformance

_CASES = conformance.all_cases()
_EXPECTED = conformance.read_expected_pass()


def _param(case):
    marks = []
    if case.name not in _EXPECTED:
        marks.append(pytest.mark.xfail(reason="not passing yet (see docs/onnx_support.md)",
                                       strict=False))
    return pytest.param(case, id=f"{case.suite}/{case.name}", marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in _CASES])
def test_onnx_case(case):
    reason = conformance.scope_reason(case)
    if reason:
        pytest.skip(f"out of scope: {reason}")
    undefined = conformance.run_case(case)
    if undefined:  # the defined elements matched; the rest is reported, not passed
        pytest.skip(f"{case.name} is partly undefined by the ONNX spec, the other elements "
                    "match: " + "; ".join(undefined))


# -- the scope definition and the harness ---------------------------------------------------
def _case(nodes, inputs, outputs, opset=22, initializers=()):
    from onnx import helper

    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return conformance.Case("test_scope", "node", model=model)


def _scope_models():
    from onnx import TensorProto as T
    from onnx import helper

    x = helper.make_tensor_value_info("x", T.FLOAT, [2])
    y = helper.make_tensor_value_info("y", T.FLOAT, [2])
    t = helper.make_tensor_value_info("t", T.BOOL, [])
    off = helper.make_tensor("t", T.BOOL, [], [False])
    on = helper.make_tensor("t", T.BOOL, [], [True])
    zero = helper.make_tensor("r", T.FLOAT, [], [0.0])
    bn = [helper.make_tensor_value_info(n, T.FLOAT, [1]) for n in "sbmv"]
    seq = helper.make_tensor_sequence_value_info("q", T.FLOAT, None)
    loop_body = helper.make_graph([helper.make_node("Identity", ["q"], ["q2"])], "body",
                                  [seq], [helper.make_tensor_sequence_value_info(
                                      "q2", T.FLOAT, None)])
    node = helper.make_node
    return [
        (_case([node("Dropout", ["x", "", "t"], ["y"])], [x, t], [y]), "training mode"),
        (_case([node("Dropout", ["x", "", "t"], ["y"])], [x], [y], initializers=[off]),
         None),
        (_case([node("Dropout", ["x", "", "t"], ["y"])], [x], [y], initializers=[on]),
         "training mode"),                                 # the default ratio 0.5
        (_case([node("Dropout", ["x", "r", "t"], ["y"])], [x], [y],
               initializers=[on, zero]), None),            # ratio 0: deterministic
        (_case([node("Dropout", ["x", "r", "t"], ["y"])],
               [x, helper.make_tensor_value_info("r", T.FLOAT, [])], [y],
               initializers=[on]), "training mode"),      # ratio given at run time
        (_case([node("Dropout", ["x"], ["y"], is_test=0)], [x], [y], opset=6),
         "training mode"),
        (_case([node("Dropout", ["x"], ["y"], is_test=0, ratio=0.0)], [x], [y], opset=6),
         None),
        (_case([node("BatchNormalization", ["x", *"sbmv"], ["y", "m2", "v2"])], [x, *bn],
               [y], opset=9), None),                       # training: deterministic
        (_case([node("BatchNormalization", ["x", *"sbmv"], ["y", "m2", "v2"],
                     training_mode=1)], [x, *bn], [y], opset=15), None),
        (_case([node("BatchNormalization", ["x", *"sbmv"], ["y"], is_test=0)], [x, *bn],
               [y], opset=6), None),
        (_case([node("BatchNormalization", ["x", *"sbmv"], ["y"])], [x, *bn], [y], opset=9),
         None),
        (_case([node("Cast", ["x"], ["s"], to=T.STRING), node("Cast", ["s"], ["y"], to=1)],
               [x], [y]), "string tensors"),
        (_case([node("If", ["c"], ["y"], then_branch=loop_body, else_branch=loop_body)],
               [helper.make_tensor_value_info("c", T.BOOL, [])], [y]), "sequence values"),
        (_case([node("RandomUniformLike", ["x"], ["y"])], [x], [y]), "random op"),
        (_case([node("Relu", ["x"], ["y"])], [x], [y]), None),
    ]


@pytest.mark.parametrize("k", range(15))
def test_scope_reason(k):
    case, reason = _scope_models()[k]
    assert conformance.scope_reason(case) == reason


def test_wrong_results_and_crashes_are_told_apart():
    import numpy as np
    from onnx import TensorProto as T
    from onnx import helper

    x = helper.make_tensor_value_info("x", T.FLOAT, [2])
    y = helper.make_tensor_value_info("y", T.FLOAT, [2])
    case = _case([helper.make_node("Relu", ["x"], ["y"])], [x], [y])
    a = np.array([-1.0, 2.0], np.float32)
    case.data_sets = [([a], [np.array([0.0, 2.0], np.float32)])]
    assert conformance._classify(case)[0] == "pass"
    case.data_sets = [([a], [np.array([1.0, 2.0], np.float32)])]
    status, detail, _ = conformance._classify(case)
    assert (status, detail.split(":")[0]) == ("fail", "wrong result")
    case.data_sets = [([a, a], [a])]  # a crash names the error, not "wrong result"
    status, detail, _ = conformance._classify(case)
    assert status == "fail" and detail.startswith("ArgumentError")
