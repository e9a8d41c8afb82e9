"""One loaded model run from 8 Python threads at once: every result equals the
single-threaded reference, and returned arrays never alias each other, the inputs, or the
executor's internal buffers (arenas, weights, constants)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from tiny_models import chain_model, chain_reference, small_model

import dlc

THREADS = 8
RUNS = 60
SIZE = 1 << 16  # a run of the chain takes long enough for runs to overlap


@pytest.fixture(scope="module", params=["small", "chain"])
def loaded(request, tmp_path_factory):
    """small: a fused model with arena intermediates, an input copy and a constant output;
    chain: 12 unfused kernels, all intermediates in the arena (opt_level 0)."""
    directory = tmp_path_factory.mktemp("concurrency")
    if request.param == "small":
        compiled = dlc.compile(small_model(directory / "m.onnx", batch=16))
        shape = (16, 12)
    else:
        compiled = dlc.compile(chain_model(directory / "m.onnx", n=12, size=SIZE),
                               opt_level=0)
        shape = (SIZE,)
    compiled.save(directory / "m.dlc")
    model = dlc.runtime.load(directory / "m.dlc")
    assert model.executor.plan["arena_bytes"] > 0, "the test needs arena intermediates"
    return model, shape


def _inputs(shape, count):
    rng = np.random.default_rng(42)
    return [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]


def test_threads_match_single_threaded_reference(loaded):
    model, shape = loaded
    inputs = _inputs(shape, THREADS * 4)
    reference = [model.run(x) for x in inputs]  # one thread, one at a time
    start = threading.Barrier(THREADS)

    def worker(k: int) -> list:
        start.wait()
        results = []
        for r in range(RUNS):
            index = (k * 7 + r) % len(inputs)
            results.append((index, model.run(inputs[index])))
        return results

    with ThreadPoolExecutor(THREADS) as pool:
        results = [item for chunk in pool.map(worker, range(THREADS)) for item in chunk]
    assert len(results) == THREADS * RUNS
    for index, outputs in results:
        for got, want in zip(outputs, reference[index]):
            np.testing.assert_array_equal(got, want)


def test_chain_values(tmp_path):
    compiled = dlc.compile(chain_model(tmp_path / "c.onnx", n=12, size=64), opt_level=0)
    compiled.save(tmp_path / "c.dlc")
    model = dlc.runtime.load(tmp_path / "c.dlc")
    x = _inputs((64,), 1)[0]
    np.testing.assert_allclose(model.run(x)[0], chain_reference(x, 12), rtol=1e-6)


def _internal_buffers(model) -> list:
    ex = model.executor
    return [ex.weights, *ex._arenas, *ex.constants.values()]


def test_outputs_never_alias(loaded):
    model, shape = loaded
    inputs = _inputs(shape, THREADS)

    def worker(x):
        return [model.run(x) for _ in range(5)]

    with ThreadPoolExecutor(THREADS) as pool:
        runs = [outs for chunk in pool.map(worker, inputs) for outs in chunk]
    arrays = [a for outs in runs for a in outs]
    internal = _internal_buffers(model)
    assert len(model.executor._arenas) >= 1
    for a in arrays:
        assert a.flags.owndata and a.flags.writeable
        for buffer in internal + inputs:
            assert not np.may_share_memory(a, buffer)
    addresses = [a.ctypes.data for a in arrays if a.nbytes]
    assert len(set(addresses)) == len(addresses), "two outputs share memory"


def test_modifying_outputs_changes_nothing_inside(loaded):
    model, shape = loaded
    x = _inputs(shape, 1)[0]
    kept = x.copy()
    first = model.run(x)
    for a in first:
        a[...] = 0
    second = model.run(x)
    np.testing.assert_array_equal(x, kept)  # the input is not written either
    assert any(np.any(a != 0) for a in second)
    again = model.run(x)
    for a, b in zip(second, again):
        np.testing.assert_array_equal(a, b)


def test_non_contiguous_and_unaligned_inputs_are_copied(loaded):
    model, shape = loaded
    x = _inputs(shape, 1)[0]
    want = model.run(x)
    strided = np.repeat(x[..., None], 2, axis=-1)[..., 0]  # same values, stride 8 bytes
    assert not strided.flags.c_contiguous
    raw = np.zeros(x.nbytes + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, np.float32, count=x.size, offset=1).reshape(shape)
    unaligned[...] = x
    assert not unaligned.flags.aligned
    for variant in (strided, unaligned):
        for got, expected in zip(model.run(variant), want):
            np.testing.assert_array_equal(got, expected)
