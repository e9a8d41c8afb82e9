"""Helpers for tests of the LLVM backend: elementwise kernels with many outputs in one build,
and comparisons that know about NaN, signed zeros and units in the last place.

    k = elementwise(("int8", "int8"), {"add": lambda a, b: a + b}, mode="vector")
    got = k.native(x, y)["add"]       # dlc.build, run on NumPy arrays
    ref = k.interpret(x, y)["add"]    # dlc.tir.interpreter.run on the same loop IR

Every output is ``out[i] = f(in0[i], in1[i], ...)`` over N elements. Modes:

* "scalar": plain loops;
* "vector": the loop split by LANES and the inner loop vectorized; N is not a multiple of
  LANES, so lowering peels a shorter vector tail;
* "masked": the same schedule without loop partitioning (``schedule_to_loops``), so the
  tail guard becomes masked vector loads and stores.

Builds are cached per process: tests parametrized over outputs share one build.
"""

from __future__ import annotations

import numpy as np

import dlc
from dlc import dtypes, te
from dlc.tir import interpreter
from dlc.tir.schedule.to_loops import schedule_to_loops

N = 37
LANES = 8
MODES = ("scalar", "vector", "masked")
FLOATS = ("float32", "float64", "float16", "bfloat16")


def np_dtype(dtype: str) -> np.dtype:
    return dtypes.to_numpy(dtype)


def is_float(dtype: str) -> bool:
    return dtype in FLOATS


class Elementwise:
    """One compiled function: inputs x0, x1, ... and one output per entry of ``outputs``."""

    def __init__(self, in_dtypes, outputs: dict, mode: str, n: int = N, target=None,
                 lanes: int = LANES):
        self.inputs = [te.placeholder((n,), dt, name=f"x{k}") for k, dt in enumerate(in_dtypes)]
        self.names = list(outputs)
        self.outputs = [_compute(n, f, self.inputs, name) for name, f in outputs.items()]
        sch = dlc.Schedule(self.inputs + self.outputs)
        if mode != "scalar":
            for out in self.outputs:
                (i,) = sch.get_loops(out)
                _, inner = sch.split(i, factor=lanes)
                sch.vectorize(inner)
        self.func = schedule_to_loops(sch) if mode == "masked" else dlc.lower(sch)
        self.mod = dlc.build(self.func, target=target)

    def _fresh_outputs(self):
        outs = []
        for t in self.outputs:
            fill = np.nan if is_float(t.dtype) else 0x5A  # garbage: unwritten elements show
            outs.append(np.full(t.shape, fill).astype(np_dtype(t.dtype)))
        return outs

    def native(self, *arrays) -> dict:
        outs = self._fresh_outputs()
        self.mod(*arrays, *outs)
        return dict(zip(self.names, outs))

    def interpret(self, *arrays) -> dict:
        outs = self._fresh_outputs()
        interpreter.run(self.func, *arrays, *outs)
        return dict(zip(self.names, outs))

    def run(self, engine: str, *arrays) -> dict:
        return self.native(*arrays) if engine == "native" else self.interpret(*arrays)


def _compute(n, f, inputs, name):
    return te.compute((n,), lambda i: f(*[x[i] for x in inputs]), name=name)


_CACHE: dict = {}


def cached(key, factory):
    """``factory()``, computed once per process for each hashable ``key``."""
    if key not in _CACHE:
        _CACHE[key] = factory()
    return _CACHE[key]


# -- comparisons ---------------------------------------------------------------------------
def _ordered_bits(x: np.ndarray) -> list[int]:
    """Float bits as Python integers that order like the values (-0 and +0 map to 0)."""
    width = x.dtype.itemsize * 8
    sign = 1 << (width - 1)
    return [-(b & (sign - 1)) if b & sign else b for b in x.view(f"uint{width}").tolist()]


def ulp_distance(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Units in the last place between two float arrays of one dtype (finite values)."""
    return np.array([abs(g - w) for g, w in zip(_ordered_bits(got), _ordered_bits(want))],
                    dtype=object)


def assert_same(got, want, what: str = "", ulps: int = 0, signed_zeros: bool = True):
    """``got == want`` elementwise: NaN where NaN, the same infinities, finite floats within
    ``ulps`` units in the last place (0: bit-exact values), and with ``signed_zeros`` the
    same sign on zero results."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if not is_float(dtypes.canonical(got.dtype)):
        bad = np.nonzero(got != want)[0]
        assert bad.size == 0, (f"{what}: {bad.size} elements differ, first at {bad[0]}: "
                               f"got {got[bad[0]]!r}, want {want[bad[0]]!r}")
        return
    g, w = got.astype(np.float64), want.astype(np.float64)
    gnan, wnan = np.isnan(g), np.isnan(w)
    bad = np.nonzero(gnan != wnan)[0]
    assert bad.size == 0, f"{what}: NaN mismatch at {bad[0]}: got {got[bad[0]]}, want " \
                          f"{want[bad[0]]}"
    ok = ~wnan
    inf = ok & (np.isinf(g) | np.isinf(w))
    bad = np.nonzero(inf & (g != w))[0]
    assert bad.size == 0, f"{what}: at {bad[0]} got {got[bad[0]]}, want {want[bad[0]]}"
    finite = ok & ~inf
    dist = np.zeros(got.shape, dtype=object)
    dist[finite] = ulp_distance(got[finite], want[finite])
    bad = np.nonzero(dist > ulps)[0]
    assert bad.size == 0, (f"{what}: {bad.size} elements more than {ulps} ulp apart, first at "
                           f"{bad[0]}: got {got[bad[0]]!r}, want {want[bad[0]]!r}")
    if signed_zeros:
        zero = finite & (w == 0) & (g == 0)
        bad = np.nonzero(zero & (np.signbit(g) != np.signbit(w)))[0]
        assert bad.size == 0, (f"{what}: sign of zero differs at {bad[0]}: got {got[bad[0]]}, "
                               f"want {want[bad[0]]}")


def assert_close(got, want, what: str, tol: float):
    """|got - want| <= tol * max(1, |want|), with NaN and infinities in the same places."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    bad = np.nonzero(np.isnan(got) != np.isnan(want))[0]
    assert bad.size == 0, f"{what}: NaN mismatch at {bad[0]}: got {got[bad[0]]}, want " \
                          f"{want[bad[0]]}"
    inf = np.isinf(want) | np.isinf(got)
    bad = np.nonzero(inf & (got != want) & ~np.isnan(want))[0]
    assert bad.size == 0, f"{what}: at {bad[0]} got {got[bad[0]]}, want {want[bad[0]]}"
    finite = np.isfinite(want) & np.isfinite(got)
    err = np.zeros(got.shape)
    err[finite] = np.abs(got[finite] - want[finite]) / np.maximum(1.0, np.abs(want[finite]))
    worst = int(np.argmax(err))
    assert err[worst] <= tol, (f"{what}: error {err[worst]:.3g} > {tol:g} at element {worst}: "
                               f"got {got[worst]!r}, want {want[worst]!r}")
