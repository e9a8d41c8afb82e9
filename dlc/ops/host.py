"""Operators whose output shape depends on input values, run with NumPy at run time:
NonZero, Unique, Compress, NonMaxSuppression.

``infer`` needs the value of every input (NeedsValueError otherwise, so that the
compiler runs the op on the host once the values exist); it evaluates the op and keeps
the result on the context, where ``reference`` finds it instead of evaluating twice.
"""

from __future__ import annotations

import numpy as np

from dlc.graph.ir import TensorType
from dlc.ops.common import normalize_axis
from dlc.ops.registry import ALL, OPAQUE, OpDef, check_dtype, register


class HostOp(OpDef):
    pattern = OPAQUE
    host = True

    def infer(self, ctx):
        arrays = [ctx.value(k) if ctx.has_input(k) else None
                  for k in range(len(ctx.in_types))]
        self.check(ctx)
        outputs = [np.asarray(o) for o in self.evaluate(ctx, *arrays)]
        ctx.host_outputs = outputs
        return [TensorType.of(o) for o in outputs]

    def check(self, ctx) -> None:
        """Type checks (values are known when this runs)."""

    def reference(self, ctx, *arrays):
        cached = getattr(ctx, "host_outputs", None)
        return cached if cached is not None else self.evaluate(ctx, *arrays)

    def evaluate(self, ctx, *arrays) -> list:
        raise NotImplementedError


@register
class NonZero(HostOp):
    name = "NonZero"

    def check(self, ctx):
        check_dtype(ctx, 0, ALL)

    def evaluate(self, ctx, x):
        if x.ndim == 0:  # like numpy.nonzero(atleast_1d(x)), as the ONNX reference does
            return [np.zeros((0, int(x != 0)), np.int64)]
        return [np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)]


@register
class Unique(HostOp):
    """numpy.unique (NaNs collapse to one), in first-occurrence order when ``sorted=0``.
    Outputs: values, first indices, inverse indices, counts."""

    name = "Unique"
    attrs = {"axis": None, "sorted": 1}
    num_outputs = (1, 4)

    def check(self, ctx):
        check_dtype(ctx, 0, ALL)
        if ctx.attrs["axis"] is not None:
            normalize_axis(ctx, ctx.attrs["axis"], ctx.type(0).ndim)

    def evaluate(self, ctx, x):
        axis = ctx.attrs["axis"]
        if axis is None:
            x, axis = x.reshape(-1), 0
        else:
            axis = normalize_axis(ctx, axis, x.ndim)
        if x.shape[axis] == 0:
            empty = np.zeros(0, np.int64)
            return [x.copy(), empty, empty, empty]
        y, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True,
                                              return_counts=True, axis=axis)
        inverse = inverse.reshape(-1)
        if not ctx.attrs["sorted"]:
            order = np.argsort(first, kind="stable")
            position = np.empty_like(order)
            position[order] = np.arange(len(order))
            first, counts, inverse = first[order], counts[order], position[inverse]
            y = np.take(x, first, axis=axis)
        return [y, first.astype(np.int64), inverse.astype(np.int64),
                counts.astype(np.int64)]


@register
class Compress(HostOp):
    """Keep the slices along ``axis`` (of the flattened input when omitted) where
    ``condition`` is true; a shorter condition drops the remaining slices."""

    name = "Compress"
    attrs = {"axis": None}
    num_inputs = (2, 2)

    def check(self, ctx):
        check_dtype(ctx, 1, ("bool",), "condition")
        if ctx.type(1).ndim != 1:
            raise ctx.error(f"condition must be 1-D, got {ctx.type(1)}")
        if ctx.attrs["axis"] is not None:
            normalize_axis(ctx, ctx.attrs["axis"], ctx.type(0).ndim)

    def evaluate(self, ctx, x, condition):
        axis = ctx.attrs["axis"]
        if axis is None:
            x, axis = x.reshape(-1), 0
        else:
            axis = normalize_axis(ctx, axis, x.ndim)
        size = x.shape[axis]
        if condition[size:].any():
            where = int(np.argmax(condition[size:])) + size
            raise ctx.error(f"condition is true at {where}, past the {size} slices of the "
                            "input")
        keep = np.nonzero(condition[:size])[0]
        return [np.take(x, keep, axis=axis)]


@register
class NonMaxSuppression(HostOp):
    """Greedy per-class suppression, as the ONNX reference computes it (float32): boxes
    with a score above ``score_threshold`` (all when omitted), by decreasing score (ties:
    lower index first), are kept unless their IoU with a kept box exceeds
    ``iou_threshold``, up to ``max_output_boxes_per_class`` (0 when omitted)."""

    name = "NonMaxSuppression"
    attrs = {"center_point_box": 0}
    num_inputs = (2, 5)

    def check(self, ctx):
        boxes, scores = ctx.type(0), ctx.type(1)
        check_dtype(ctx, 0, ("float32",), "boxes")
        check_dtype(ctx, 1, ("float32",), "scores")
        if boxes.ndim != 3 or boxes.shape[2] != 4 or scores.ndim != 3 or \
                scores.shape[0] != boxes.shape[0] or scores.shape[2] != boxes.shape[1]:
            raise ctx.error(f"boxes {list(boxes.shape)} must be [batches, boxes, 4] and scores "
                            f"{list(scores.shape)} [batches, classes, boxes]")
        if ctx.attrs["center_point_box"] not in (0, 1):
            raise ctx.error(f"center_point_box={ctx.attrs['center_point_box']} must be 0 or 1")
        for k, dtype in ((2, "int64"), (3, "float32"), (4, "float32")):
            if ctx.has_input(k) and (ctx.type(k).dtype != dtype or ctx.type(k).size > 1):
                raise ctx.error(f"input {k} must be one {dtype} value, got {ctx.type(k)}")

    def evaluate(self, ctx, boxes, scores, max_out=None, iou=None, score_threshold=None):
        limit = int(max_out.reshape(-1)[0]) if max_out is not None and max_out.size else 0
        limit = max(limit, 0)
        iou = iou.reshape(-1)[0] if iou is not None and iou.size else np.float32(0)
        if score_threshold is not None and score_threshold.size == 0:
            score_threshold = None
        corners = _corners(boxes, ctx.attrs["center_point_box"])
        selected = []
        for b in range(boxes.shape[0]):
            for c in range(scores.shape[1]):
                for box in _select(corners[b], scores[b, c], limit, iou, score_threshold):
                    selected.append((b, c, box))
        return [np.array(selected, dtype=np.int64).reshape(-1, 3)]


def _corners(boxes: np.ndarray, center_point_box: int) -> np.ndarray:
    """[..., (x_min, x_max, y_min, y_max)] in float32, as the reference derives them."""
    if center_point_box == 0:
        y1, x1, y2, x2 = (boxes[..., k] for k in range(4))
        return np.stack([np.minimum(x1, x2), np.maximum(x1, x2), np.minimum(y1, y2),
                         np.maximum(y1, y2)], axis=-1)
    xc, yc, w, h = (boxes[..., k] for k in range(4))
    half_w, half_h = w / np.float32(2), h / np.float32(2)
    return np.stack([xc - half_w, xc + half_w, yc - half_h, yc + half_h], axis=-1)


def _select(corners, scores, limit, iou_threshold, score_threshold) -> list:
    candidates = np.arange(len(scores))
    if score_threshold is not None:
        candidates = candidates[scores > score_threshold.reshape(-1)[0]]
    order = candidates[np.lexsort((candidates, -scores[candidates].astype(np.float64)))]
    kept: list = []
    for box in order:
        if len(kept) >= limit:
            break
        if not kept or not _suppressed(corners[box], corners[kept], iou_threshold).any():
            kept.append(int(box))
    return kept


def _suppressed(box, others, threshold) -> np.ndarray:
    """Whether ``box`` overlaps each of ``others`` with an IoU above ``threshold``."""
    with np.errstate(all="ignore"):
        x_lo, x_hi = np.maximum(box[0], others[:, 0]), np.minimum(box[1], others[:, 1])
        y_lo, y_hi = np.maximum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
        inter = (x_hi - x_lo) * (y_hi - y_lo)
        area = (box[1] - box[0]) * (box[3] - box[2])
        areas = (others[:, 1] - others[:, 0]) * (others[:, 3] - others[:, 2])
        union = area + areas - inter
        ok = (x_hi > x_lo) & (y_hi > y_lo) & (inter > 0) & (area > 0) & (areas > 0) & \
            (union > 0)
        return ok & (inter / union > threshold)
