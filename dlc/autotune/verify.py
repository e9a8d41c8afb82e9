"""Checking a candidate's outputs: fresh outputs no correct kernel leaves as they are, and
comparison with the reference by dtype, naming the worst element."""

from __future__ import annotations

import math

import numpy as np

from dlc.runtime.module import _numpy_dtype

#: Relative tolerance per float dtype (atol is this times the largest finite |reference|).
RTOL = {"float64": 1e-6, "float32": 1e-3, "float16": 1e-2, "bfloat16": 2e-2}
LOW_PRECISION_RTOL = 1e-1  # float8 kinds and others not listed


def filled_output(param: dict) -> np.ndarray:
    """A fresh output array that no correct kernel leaves as it is: NaN for floats, bytes
    0xA5 for the rest (not 0 or 1 for bool, an unlikely value for integers)."""
    dtype = _numpy_dtype(param["dtype"])
    shape = tuple(param["shape"])
    if _is_float(dtype):
        return np.full(shape, np.nan, dtype=dtype)
    array = np.empty(shape, dtype=dtype)
    array.view(np.uint8).fill(0xA5)
    return array


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or (dtype.kind == "V" and "float" in dtype.name)


def compare_outputs(outputs: list, reference: list, names: list) -> str | None:
    """None when every output matches its reference, else a one-line message naming the
    worst element. Floats: within rtol (by dtype, :data:`RTOL`) and atol = rtol x the
    largest finite |reference|, NaN exactly where the reference has NaN; others: exact."""
    if len(outputs) != len(reference):
        return f"{len(outputs)} outputs but {len(reference)} references"
    for out, ref, name in zip(outputs, reference, names):
        ref = np.asarray(ref)
        if ref.shape != out.shape:
            return f"output {name} has shape {out.shape}, the reference {ref.shape}"
        if _is_float(out.dtype):
            message = _compare_floats(out, ref, name)
        else:
            message = _compare_exact(out, ref, name)
        if message:
            return message
    return None


def _compare_floats(out: np.ndarray, ref: np.ndarray, name: str) -> str | None:
    rtol = RTOL.get(out.dtype.name, LOW_PRECISION_RTOL)
    got, want = out.astype(np.float64), ref.astype(np.float64)
    finite = np.isfinite(want)
    scale = float(np.max(np.abs(want[finite]))) if finite.any() else 0.0
    atol = rtol * scale
    close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    with np.errstate(invalid="ignore"):
        error = np.abs(got - want) / (atol + rtol * np.abs(want) + 1e-300)
    error = np.where(close, -1.0, np.nan_to_num(error, nan=np.inf, posinf=np.inf))
    worst = _index(np.argmax(error), out.shape)
    count = int((~close).sum())
    hint = " (never written?)" if math.isnan(got[worst]) and not math.isnan(want[worst]) else ""
    return (f"output {name}{list(worst)} = {got[worst]:.6g}, expected {want[worst]:.6g}"
            f"{hint}; {count} of {out.size} elements differ beyond rtol={rtol:g}, "
            f"atol={atol:.3g}")


def _compare_exact(out: np.ndarray, ref: np.ndarray, name: str) -> str | None:
    if ref.dtype != out.dtype:
        ref = ref.astype(out.dtype)
    # compared as bytes, so that an unwritten bool (0xA5) is not "True"
    got = out.view(np.uint8).reshape(out.shape + (-1,))
    same = (got == ref.view(np.uint8).reshape(ref.shape + (-1,))).all(axis=-1)
    if same.all():
        return None
    worst = _index(np.argmin(same), out.shape)
    count = int((~same).sum())
    unset = got[worst].tobytes() == b"\xa5" * out.itemsize
    value = got[worst][0] if out.dtype == np.bool_ else out[worst]
    return (f"output {name}{list(worst)} = {value}, expected {ref[worst]}"
            f"{' (never written?)' if unset else ''}; {count} of {out.size} elements differ")


def _index(flat, shape: tuple) -> tuple:
    return tuple(int(i) for i in np.unravel_index(int(flat), shape))
