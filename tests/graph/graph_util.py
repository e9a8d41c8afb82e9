"""Helpers for tests of graph passes: docstring examples, type consistency, and results
of the original and rewritten graphs (NumPy interpreter and compiled code)."""

from __future__ import annotations

import numpy as np

import dlc
from dlc.graph import run_graph, verify
from dlc.graph.passes.infer_types import infer_types


def docstring_example(module) -> tuple[str, str]:
    """The ``Before::`` and ``After...::`` blocks of a pass module's docstring, dedented."""
    text = module.__doc__
    before = text.split("\nBefore::\n\n", 1)[1].split("\n\nAfter", 1)[0]
    after = text.split("\n\nAfter", 1)[1].split("::\n\n", 1)[1]
    return _dedent(before), _dedent(after)


def _dedent(block: str) -> str:
    lines = [line[4:] for line in block.rstrip().splitlines()]
    return "\n".join(lines)


def check_well_formed(graph) -> None:
    """The graph verifies, and its stored types are exactly what inference gives for the
    tensors it defines."""
    verify(graph)
    retyped = infer_types(graph, fold=False)
    defined = set(graph.inputs) | set(graph.constants) | {
        o for n in graph.nodes for o in n.outputs if o}
    assert set(graph.types) == defined, (set(graph.types) ^ defined, str(graph))
    for name in defined:
        assert retyped.types[name] == graph.types[name], (name, str(graph))


def rand(shape, dtype="float32", seed=0, low=-1.0, high=1.0):
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=shape).astype(dtype)


def random_inputs(graph, seed=0) -> dict:
    return {name: rand(graph.types[name].shape, graph.types[name].dtype, seed + k)
            for k, name in enumerate(graph.inputs)}


def assert_same(before, after, inputs=None, rtol=1e-5, atol=1e-6) -> None:
    """``after`` (a rewritten graph) gives ``before``'s results in the NumPy interpreter."""
    inputs = inputs if inputs is not None else random_inputs(before)
    for want, got in zip(run_graph(before, inputs), run_graph(after, inputs)):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def assert_compiled_same(graph, inputs=None, rtol=1e-5, atol=1e-6) -> None:
    """``graph`` compiled at opt_level 0 and 1 agrees with the NumPy interpreter."""
    inputs = inputs if inputs is not None else random_inputs(graph)
    want = run_graph(graph, inputs)
    for level in (0, 1):
        got = dlc.compile(graph, opt_level=level).run(inputs)
        for w, g in zip(want, got):
            assert g.dtype == w.dtype and g.shape == w.shape
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol,
                                       err_msg=f"opt_level={level}")
