"""Mutated model bytes: nothing escapes except dlc's own error types for bad input. An
InternalError marks a dlc bug, so it fails the test like any other exception."""

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import dlc

pytestmark = pytest.mark.filterwarnings("ignore")


def _seed_model() -> bytes:
    w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
    nodes = [helper.make_node("Add", ["x", "w"], ["s"], name="add0"),
             helper.make_node("Relu", ["s"], ["r"], name="relu0"),
             helper.make_node("Mul", ["r", "x"], ["m"], name="mul0"),
             helper.make_node("Exp", ["m"], ["e"], name="exp0")]
    graph = helper.make_graph(nodes, "seed", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [2, 3])], [helper.make_tensor_value_info(
            "e", TensorProto.FLOAT, [2, 3])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


SEED = _seed_model()

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, len(SEED) - 1), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, len(SEED) - 1), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, len(SEED) - 1), st.integers(0, 255)),
    st.tuples(st.just("delete"), st.integers(0, len(SEED) - 1), st.integers(1, 8)),
)


def _mutate(data: bytes, edits) -> bytes:
    buf = bytearray(data)
    for kind, pos, arg in edits:
        pos = min(pos, max(len(buf) - 1, 0))
        if kind == "flip" and buf:
            buf[pos] ^= arg
        elif kind == "cut":
            del buf[pos:]
        elif kind == "insert":
            buf.insert(pos, arg)
        elif kind == "delete":
            del buf[pos:pos + arg]
    return bytes(buf)


def _inputs_for(compiled):
    feeds = []
    for spec in compiled.executor.inputs if hasattr(compiled, "executor") else []:
        size = int(np.prod(spec["shape"]))
        if size > 1 << 20:
            return None
        feeds.append(np.random.rand(*spec["shape"]).astype(spec["dtype"]))
    return feeds


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(mutation, min_size=1, max_size=4))
@example([("flip", 91, 128)])  # the graph's name becomes invalid UTF-8 (protobuf: bytes)
def test_mutated_models_fail_cleanly(edits):
    data = _mutate(SEED, edits)
    try:
        compiled = dlc.compile(data)
    except dlc.InternalError:
        raise
    except dlc.DlcError:
        return
    feeds = _inputs_for(compiled)
    if feeds is None:
        return
    try:
        compiled.run(*feeds)
    except dlc.InternalError:
        raise
    except dlc.DlcError:
        pass


def test_an_internal_error_fails_the_fuzz_test(monkeypatch):
    """The fuzz test's own contract: a dlc bug (InternalError) is not a clean failure."""
    def broken(*args, **kwargs):
        raise dlc.InternalError("simulated compiler bug")

    monkeypatch.setattr(dlc, "compile", broken)
    with pytest.raises(dlc.InternalError):
        test_mutated_models_fail_cleanly.hypothesis.inner_test([("flip", 0, 0)])


def test_invalid_utf8_names_are_model_errors():
    data = bytearray(SEED)
    at = data.index(b"relu0")  # a node name
    data[at] = 0xff
    with pytest.raises(dlc.ModelError, match="not valid UTF-8"):
        dlc.compile(bytes(data))
