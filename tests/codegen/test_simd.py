"""The machine code dlc.build emits: packed FMA on wide registers, inline vector math with no
libm calls, and the -mcpu= targets (SSE-only x86-64, AVX2 haswell, the host).

Also the text formats of Module.get_source: "ll" (LLVM IR), "asm", "tir"."""

from __future__ import annotations

import re

import numpy as np
import pytest
from codegen_util import Elementwise, cached

import dlc

HOST, HASWELL, SSE = None, "llvm -mcpu=haswell", "llvm -mcpu=x86-64"
INLINE_MATH = ("exp", "tanh", "erf", "sigmoid", "log")


def _fma_kernel(target, lanes=16) -> Elementwise:
    return cached(("fma", target, lanes), lambda: Elementwise(
        ("float32",) * 3, {"y": lambda a, b, c: a * b + c}, "vector", n=64, target=target,
        lanes=lanes))


def _math_kernel(target, names=INLINE_MATH) -> Elementwise:
    def fn(name):
        return lambda x: getattr(dlc.te, name)(x)

    return cached(("math", target, names), lambda: Elementwise(
        ("float32",), {name: fn(name) for name in names}, "vector", n=64, target=target,
        lanes=16))


def _registers(asm: str) -> set:
    return set(re.findall(r"%([xyz]mm)\d+", asm))


def _calls(asm: str) -> list[str]:
    return re.findall(r"^\s*call[a-z]*\s+(\S+)", asm, flags=re.MULTILINE)


def _check_fma_result(k: Elementwise) -> None:
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((3, 64)).astype(np.float32)
    np.testing.assert_allclose(k.native(a, b, c)["y"], a * b + c, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("target", [HOST, HASWELL])
def test_multiply_add_is_packed_fma(target):
    k = _fma_kernel(target)
    asm = k.mod.get_source("asm")
    fma = [line for line in asm.splitlines()
           if re.search(r"\bvfmadd\d+ps\b", line) and re.search(r"%[yz]mm", line)]
    assert fma, f"no packed vfmadd...ps on ymm/zmm registers in:\n{asm}"
    _check_fma_result(k)


def test_haswell_uses_ymm_not_zmm():
    asm = _fma_kernel(HASWELL).mod.get_source("asm")
    assert "ymm" in _registers(asm)
    assert "zmm" not in _registers(asm), "haswell has no AVX-512"


def test_host_avx512_uses_zmm():
    from dlc.codegen.llvm.machine import host_cpu_features

    if "+avx512f" not in host_cpu_features().split(","):
        pytest.skip("the host CPU has no AVX-512")
    asm = _fma_kernel(HOST).mod.get_source("asm")
    assert "zmm" in _registers(asm), "16 float lanes should fill one zmm register"


def test_x86_64_baseline_is_sse_only():
    """-mcpu=x86-64 (SSE2): no VEX-encoded instructions, no ymm/zmm, still correct."""
    k = _fma_kernel(SSE)
    asm = k.mod.get_source("asm")
    assert _registers(asm) <= {"xmm"}
    assert not re.search(r"^\s*v[a-z]", asm, flags=re.MULTILINE), "AVX instruction in SSE code"
    assert re.search(r"\bmulps\b", asm) and re.search(r"\baddps\b", asm)
    _check_fma_result(k)


@pytest.mark.parametrize("target", [HOST, HASWELL, SSE])
def test_vector_math_has_no_libm_calls(target):
    k = _math_kernel(target)
    asm = k.mod.get_source("asm")
    assert _calls(asm) == [], f"calls in vectorized {INLINE_MATH}: {_calls(asm)}"
    x = np.linspace(-5, 5, 64, dtype=np.float32)
    got = k.native(x)
    np.testing.assert_allclose(got["exp"], np.exp(x), rtol=1e-6)
    np.testing.assert_allclose(got["tanh"], np.tanh(x), rtol=1e-6, atol=1e-7)


def test_libm_calls_are_visible_to_the_check():
    """The check above can see calls: sin goes to libm's sinf, one call per lane."""
    asm = _math_kernel(HOST, ("sin",)).mod.get_source("asm")
    assert any("sinf" in c for c in _calls(asm))


def test_get_source_formats():
    k = _fma_kernel(HOST)
    ll = k.mod.get_source("ll")
    assert "define" in ll and "@dlc_main" in ll and "<16 x float>" in ll
    assert k.mod.get_source() == ll  # "ll" is the default
    assert "vectorized" in k.mod.get_source("tir") or "ramp" in k.mod.get_source("tir")
    assert "dlc_main:" in k.mod.get_source("asm")
    with pytest.raises(dlc.DlcError, match="no 'ptx' source; available: ll, asm, tir"):
        k.mod.get_source("ptx")


def test_get_source_of_a_loaded_library(tmp_path):
    from dlc.runtime import load_module

    path = tmp_path / "k.so"
    _fma_kernel(HOST).mod.export_library(path)
    with pytest.raises(dlc.DlcError, match="module loaded from a library"):
        load_module(path).get_source("ll")


@pytest.mark.parametrize("target, message", [
    ("llvm -mcpu=notacpu", "notacpu"),
    ("llvm -mattr=+nonsense", r"\+nonsense"),
    ("llvm -mtriple=aarch64-linux-gnu", "only x86_64 Linux"),
])
def test_bad_targets_raise(target, message):
    """LLVM only warns about an unknown CPU, then aborts the process while emitting code:
    dlc must raise first."""
    with pytest.raises(dlc.TargetError, match=message):
        Elementwise(("float32",), {"y": lambda a: a + 1.0}, "scalar", n=4, target=target)


@pytest.mark.parametrize("target", ["llvm -mcpu=x86-64-v3", "llvm -mcpu=znver4 -mattr=-avx512f",
                                    "llvm -opt-level=0"])
def test_other_targets_build_and_run(target):
    k = Elementwise(("float32",) * 3, {"y": lambda a, b, c: a * b + c}, "vector", n=64,
                    target=target)
    _check_fma_result(k)
    if "-avx512f" in target:
        assert "zmm" not in _registers(k.mod.get_source("asm"))
