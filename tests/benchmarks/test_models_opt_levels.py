"""The benchmark models of benchmarks/models.py give the same results at every optimization
level: each is compiled at opt_level 0 (no graph passes, one kernel per node) and at
opt_level 3 (every pass), and both are compared with each other and with onnxruntime (graph
optimizations off: the model read as written).

The default suite compiles small versions of every model (same structure: the same ops,
attributes and block kinds, fewer channels and smaller images or sequences); the full-size
versions that benchmarks/models_cpu.py times are marked slow.

Tolerance: ``|got - want| <= RTOL * |want| + ATOL_SCALE * max(1, max|want|)``. The absolute
part is relative to the output's scale, since an elementwise relative bound means nothing for
outputs near zero of a deep network. A correct optimizer legitimately changes rounding (a
BatchNormalization folded into the convolution's weights, reductions summed in another order
by blocked layouts and fast schedules, fused elementwise chains): float32 dot products of up
to 4608 terms through 20 layers drift by about 1e-6 to 1e-5 of the output scale (measured
today: at most 2e-6 between dlc and onnxruntime), so 1e-4 leaves a margin of 10 to 100. Bugs
(a wrong index, pad or bias, a dropped node, a mask applied twice) move outputs by 1e-2 of
their scale or more and fail.
"""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np
import pytest

import dlc

pytest.importorskip("onnxruntime")

RTOL, ATOL_SCALE = 1e-3, 1e-4
_PATH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "models.py"
_spec = importlib.util.spec_from_file_location("benchmark_models", _PATH)
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)


def _assert_close(got, want, what: str) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, \
        f"{what}: {got.dtype}{list(got.shape)} != {want.dtype}{list(want.shape)}"
    atol = ATOL_SCALE * max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol, err_msg=what)


def _check_opt_levels(model) -> None:
    feeds = models.random_inputs(model)
    reference = models.ort_session(model, threads=1, optimize=False).run(None, feeds)
    outputs = {level: dlc.compile(model, opt_level=level).run(feeds) for level in (0, 3)}
    for k, want in enumerate(reference):
        _assert_close(outputs[0][k], want, f"output {k}: opt_level 0 vs onnxruntime")
        _assert_close(outputs[3][k], outputs[0][k], f"output {k}: opt_level 3 vs 0")
        _assert_close(outputs[3][k], want, f"output {k}: opt_level 3 vs onnxruntime")


@pytest.mark.parametrize("name", list(models.CASES))
def test_small_model_same_at_opt_levels_0_and_3(name):
    _check_opt_levels(models.CASES[name][1]())


@pytest.mark.slow
@pytest.mark.parametrize("name", list(models.CASES))
def test_full_model_same_at_opt_levels_0_and_3(name):
    _check_opt_levels(models.CASES[name][0]())


def _structure(model) -> set:
    """Op types with their shape-independent attributes (group>1 marks depthwise)."""
    kinds = set()
    for node in model.graph.node:
        attrs = {a.name: tuple(a.ints) or a.i or a.f for a in node.attribute
                 if a.name in ("kernel_shape", "strides", "perm", "axis", "transB", "to")}
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        kinds.add((node.op_type, tuple(sorted(attrs.items())), group > 1))
    return kinds


@pytest.mark.parametrize("name", list(models.CASES))
def test_small_model_has_the_full_models_structure(name):
    full, small = (build() for build in models.CASES[name])
    assert _structure(small) == _structure(full)
