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
    if case.suite == "light":
        marks.append(pytest.mark.slow)
    return pytest.param(case, id=f"{case.suite}/{case.name}", marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in _CASES])
def test_onnx_case(case):
    reason = conformance.scope_reason(case)
    if reason:
        pytest.skip(f"out of scope: {reason}")
    conformance.run_case(case)
