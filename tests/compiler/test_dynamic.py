"""dlc.compiler.dynamic: models whose shapes depend on input values, compiled per distinct
shape into a bounded, least-recently-used cache."""

import numpy as np
import pytest
from onnx import TensorProto as T
from onnx import helper

import dlc
from dlc.compiler.dynamic import DEFAULT_CACHE_SIZE, CompiledCache
from dlc.compiler.model import DynamicModel


def _reshape_model():
    """y = Relu(Reshape(x, s)) with the shape s an input: one compile per value of s."""
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"], name="reshape"),
             helper.make_node("Relu", ["r"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "dyn", [
        helper.make_tensor_value_info("x", T.FLOAT, [12]),
        helper.make_tensor_value_info("s", T.INT64, [2])],
        [helper.make_tensor_value_info("y", T.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


SHAPES = [(1, 12), (2, 6), (3, 4), (4, 3), (6, 2), (12, 1)]


def _run(model, shape):
    x = np.linspace(-1, 1, 12, dtype=np.float32)
    (y,) = model.run(x, np.array(shape, np.int64))
    np.testing.assert_array_equal(y, np.maximum(x, 0).reshape(shape))


def test_each_distinct_shape_compiles_once_and_the_cache_is_bounded():
    model = dlc.compile(_reshape_model())
    assert isinstance(model, DynamicModel)
    assert model.cache.maxsize == DEFAULT_CACHE_SIZE
    for shape in SHAPES:
        _run(model, shape)
    per_shape = model.cache.compiles // len(SHAPES)
    assert per_shape >= 1 and model.cache.compiles == per_shape * len(SHAPES)
    for shape in SHAPES:  # all cached: nothing compiles again
        _run(model, shape)
    assert model.cache.compiles == per_shape * len(SHAPES)

    model.cache.maxsize = 2 * per_shape  # room for two shapes: the last two stay
    assert len(model.cache) == 2 * per_shape
    before = model.cache.compiles
    _run(model, SHAPES[-1])
    _run(model, SHAPES[-2])
    assert model.cache.compiles == before
    _run(model, SHAPES[0])  # evicted: compiled again, and the least recent goes out
    assert model.cache.compiles == before + per_shape
    assert len(model.cache) == 2 * per_shape
    _run(model, SHAPES[-2])
    assert model.cache.compiles == before + per_shape
    _run(model, SHAPES[-1])
    assert model.cache.compiles == before + 2 * per_shape


def test_cache_order_is_least_recently_used():
    cache = CompiledCache(maxsize=2)
    made = []

    def make(key):
        return lambda: made.append(key) or key

    for key in ["a", "b", "a", "c", "a", "b"]:
        assert cache.get_or_compile(key, make(key)) == key
    assert made == ["a", "b", "c", "b"]  # 'b' went out when 'c' came, 'c' when 'b' came
    assert cache.compiles == 4 and len(cache) == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_cache_size_must_be_a_positive_integer(bad):
    with pytest.raises(dlc.DlcError, match="at least 1 entry"):
        CompiledCache(maxsize=bad)


def _loaded_libraries() -> int:
    """dlc libraries mapped in this process (each is a deleted file named dlc-*.so)."""
    with open("/proc/self/maps") as f:
        return len({line.split()[5] for line in f
                    if len(line.split()) > 5 and "/dlc-" in line.split()[5]})


def test_evicted_pieces_are_unloaded():
    """A model fed ever new shapes keeps at most maxsize libraries loaded."""
    import gc

    model = dlc.compile(_reshape_model())
    _run(model, SHAPES[0])
    per_shape = model.cache.compiles
    model.cache.maxsize = per_shape
    gc.collect()
    before = _loaded_libraries()
    for shape in SHAPES[1:]:
        _run(model, shape)
    gc.collect()
    assert model.cache.compiles == per_shape * len(SHAPES)
    assert _loaded_libraries() <= before
