"""dlc.runtime.profile: each kernel of a compiled or loaded model timed on its own, in the
entry function's order, with its share of the total and GFLOP/s; old plans without flop
counts still profile ("-"), plans without kernel calls ask to be compiled again."""

from __future__ import annotations

import numpy as np
import pytest
from artifact_util import rewrite
from tiny_models import chain_model

import dlc
from dlc.errors import ArgumentError, DlcError
from dlc.runtime.profile import CallTime, Profile

X = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 12)


def _check(profile, model_kernels):
    assert [c.kernel for c in profile.calls] == [k.name for k in model_kernels]
    assert all(c.seconds > 0 for c in profile.calls) and profile.entry_seconds > 0
    rows = profile.kernels()
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    assert [r.seconds for r in rows] == sorted((r.seconds for r in rows), reverse=True)
    assert sum(r.seconds for r in rows) == pytest.approx(profile.total_seconds)


def test_compiled_model_lists_every_kernel(compiled):
    profile = compiled.profile({"x": X}, repeat=3, warmup=1)
    _check(profile, compiled.kernels)
    assert [c.flops for c in profile.calls] == [k.flops for k in compiled.kernels]
    rows = {r.function: r for r in profile.kernels()}
    dense = rows["k1_fused_dense_relu_1"]
    panels, k, nr = next(k.func.params[1].shape for k in compiled.kernels
                         if k.name == dense.function)
    assert dense.flops == 2 * 2 * (panels * nr) * k + 2 * 8  # whole panels, then relu
    assert dense.gflops == pytest.approx(dense.flops / dense.seconds / 1e9)
    assert rows["k3_identity"].flops == 0 and rows["k3_identity"].gflops is None


def test_profile_leaves_the_model_runnable(compiled):
    """Profiling writes only its own outputs and arena: runs before and after agree."""
    before = compiled.run(X)
    compiled.profile(X, repeat=2, warmup=0)
    for a, b in zip(before, compiled.run(X)):
        np.testing.assert_array_equal(a, b)


def test_loaded_artifact_profiles_like_the_compiled_model(compiled, saved, tmp_path):
    path = tmp_path / "small.dlc"
    path.write_bytes(saved)
    profile = dlc.runtime.load(path).profile(X, repeat=2, warmup=0)
    _check(profile, compiled.kernels)
    assert [c.flops for c in profile.calls] == [k.flops for k in compiled.kernels]


def _drop_flops(manifest, sections):
    for call in manifest["plan"]["calls"]:
        del call["flops"]


def test_plan_without_flops_profiles_without_gflops(compiled, saved, tmp_path):
    model = dlc.runtime.load(rewrite(tmp_path, saved, _drop_flops))
    profile = model.profile(X, repeat=2, warmup=0)
    _check(profile, compiled.kernels)
    assert all(r.flops is None and r.gflops is None for r in profile.kernels())
    rows = profile.format().splitlines()[1:-1]
    assert len(rows) == 5 and all(row.split()[-1] == "-" for row in rows)


def test_plan_without_calls_loads_and_runs_but_asks_to_compile_again(saved, tmp_path):
    def drop_calls(manifest, sections):
        del manifest["plan"]["calls"]

    model = dlc.runtime.load(rewrite(tmp_path, saved, drop_calls))
    model.run(X)
    with pytest.raises(DlcError, match=r"older dlc\); compile it again"):
        model.profile(X)


def test_kernels_sharing_a_function_are_one_row(tmp_path):
    """At opt level 0 the chain's Adds (and its Muls) have one loop nest: two functions,
    each called twice."""
    model = dlc.compile(chain_model(tmp_path / "chain.onnx", n=4), opt_level=0)
    profile = model.profile(np.ones(16, np.float32), repeat=2, warmup=0)
    _check(profile, model.kernels)
    assert sorted((r.function, r.calls, r.flops) for r in profile.kernels()) == [
        ("k0_n0", 2, 32), ("k1_n1", 2, 32)]


def test_model_without_kernels(tmp_path):
    from tiny_models import constants_model

    model = dlc.compile(constants_model(tmp_path / "c.onnx", ["a"], relu=False))
    profile = model.profile({}, repeat=2)
    assert profile.calls == [] and profile.kernels() == []
    assert "sum of kernels" in profile.format()


@pytest.mark.parametrize("repeat, warmup", [(0, 1), (2, -1), (1.5, 0), (True, 0)])
def test_bad_repeat_or_warmup(compiled, repeat, warmup):
    with pytest.raises(ArgumentError, match="must be an integer of at least"):
        compiled.profile(X, repeat=repeat, warmup=warmup)


def test_inputs_are_checked(compiled):
    with pytest.raises(ArgumentError, match="must have shape"):
        compiled.profile(np.zeros((3, 12), np.float32))


def test_table():
    profile = Profile([CallTime("k0_conv", "k0_conv", 3e-3, 6_000_000),
                       CallTime("k1_relu", "k1_relu", 0.5e-3, None),
                       CallTime("k2_conv", "k0_conv", 1e-3, 6_000_000),
                       CallTime("k3_copy", "k3_copy", 0.5e-3, 0)], 4.5e-3, repeat=10)
    assert profile.format().splitlines() == [
        "kernel                    calls    median ms    share   GFLOP/s",
        "k0_conv                       2        4.000    80.0%      3.00",
        "k1_relu                       1        0.500    10.0%         -",
        "k3_copy                       1        0.500    10.0%         -",
        "sum of kernels                4        5.000   100.0%         -",
        "entry function, one call               4.500  (kernels one by one: +0.500 ms)",
    ]
    assert str(profile) == profile.format()
