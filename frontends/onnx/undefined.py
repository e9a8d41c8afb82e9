"""Output elements of an ONNX test case that the ONNX spec leaves undefined.

The spec defines no result for a float cast to an integer type when the value is out of
the type's range (NaN and infinities included): ONNX's test data then holds whatever the
library that generated it did (ml_dtypes wrapped int4 until 0.6 and gives 0 since 0.7).
The conformance harness compares the other elements exactly and reports these apart,
never as passes. dlc's own choice for them (truncate, saturate, NaN to 0) is documented in
docs/onnx_support.md and tested with hand-written values in tests/ops.

Only what can be traced to the inputs is marked: a Cast or CastLike (or an Identity of
one) reading a graph input. Any other output is compared whole, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlc import dtypes
from dlc.errors import DlcTypeError
from dlc.ops import small_floats as sf

CASTS = ("Cast", "CastLike")


@dataclass(frozen=True)
class Undefined:
    """The elements of output ``index`` whose value the spec leaves open, and why."""

    index: int
    mask: np.ndarray
    reason: str

    def describe(self) -> str:
        return f"output {self.index}: {int(self.mask.sum())} of {self.mask.size} elements " \
               f"{self.reason}"


def undefined_elements(model, inputs: list) -> list[Undefined]:
    """The undefined elements of each output of ``model`` run on ``inputs`` (only outputs
    that have some)."""
    graph = model.graph
    values = {vi.name: np.asarray(x) for vi, x in zip(_runtime_inputs(graph), inputs)}
    found: dict[str, tuple[np.ndarray, str]] = {}
    for node in graph.node:
        if node.op_type in CASTS and node.input[0] in values:
            target = _cast_target(node, values)
            if target is not None:
                found[node.output[0]] = _out_of_range(values[node.input[0]], target)
        elif node.op_type == "Identity" and node.input[0] in found:
            found[node.output[0]] = found[node.input[0]]
    out = []
    for k, vi in enumerate(graph.output):
        if vi.name in found and found[vi.name][0].any():
            out.append(Undefined(k, *found[vi.name]))
    return out


def _runtime_inputs(graph) -> list:
    initialized = {init.name for init in graph.initializer}
    return [vi for vi in graph.input if vi.name not in initialized]


def _cast_target(node, values: dict) -> str | None:
    """The integer dtype a float-to-integer Cast/CastLike converts to, else None."""
    source = _dlc_dtype(values[node.input[0]].dtype)
    if source is None or not (dtypes.is_float(source) or source in sf.SMALL_FLOATS):
        return None
    if node.op_type == "CastLike":
        like = values.get(node.input[1])
        target = None if like is None else _dlc_dtype(like.dtype)
    else:
        from onnx import helper

        to = next((a.i for a in node.attribute if a.name == "to"), None)
        try:
            target = _dlc_dtype(helper.tensor_dtype_to_np_dtype(to))
        except (KeyError, TypeError, ValueError):
            target = None
    if target is None or not (dtypes.is_int(target) or sf.is_small_int(target)):
        return None
    return target


def _dlc_dtype(np_dtype) -> str | None:
    try:
        return dtypes.canonical(np_dtype)
    except DlcTypeError:
        return None


def _out_of_range(x: np.ndarray, target: str) -> tuple[np.ndarray, str]:
    """Elements of float ``x`` whose truncation is not a value of ``target`` (NaN too)."""
    if sf.is_small_int(target):
        lo, hi = sf.int_range(target)
    else:
        lo, hi = dtypes.min_value(target), dtypes.max_value(target)
    whole = np.trunc(x.astype(np.float64))
    top = float(hi)  # 2**63 - 1 rounds up to 2**63, which is out of range
    with np.errstate(invalid="ignore"):
        below_top = whole <= top if top == hi else whole < top
        inside = np.isfinite(whole) & (whole >= float(lo)) & below_top
    source = dtypes.canonical(x.dtype)
    return ~inside, f"are {source} values out of {target}'s range (undefined by the spec)"
