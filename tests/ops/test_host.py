"""Data-dependent (host) operators (dlc/ops/host.py) against expectations written here:
NonZero, Unique, Compress, NonMaxSuppression, alone and feeding compiled ops; must-fail
cases for bad types and values."""

import numpy as np
import pytest
from op_util import C, run, same

import dlc
from dlc.errors import DlcError, ModelError
from dlc.graph import GraphBuilder


# -- NonZero ------------------------------------------------------------------------------
@pytest.mark.parametrize("x", [np.array([[1, 0], [1, 1]], np.int32),
                               np.array([0.0, -0.0, 2.5, np.nan], np.float32),
                               np.zeros((2, 3), bool), np.array([[[True]]])])
def test_non_zero(x):
    same(run("NonZero", x), np.array(np.nonzero(x), np.int64).reshape(x.ndim, -1))


def test_non_zero_of_a_scalar():
    same(run("NonZero", np.array(3, np.int64)), np.zeros((0, 1), np.int64))


def test_non_zero_feeds_a_compiled_op_and_runs_twice():
    g = GraphBuilder()
    x = g.input("x", (3, 3), "float32")
    g.output(g.op("Transpose", g.op("NonZero", x)))
    model = dlc.compile(g.build())
    for seed in (0, 1):
        a = np.random.default_rng(seed).integers(0, 2, (3, 3)).astype(np.float32)
        same(model.run(a)[0], np.argwhere(a).astype(np.int64))


# -- Unique -------------------------------------------------------------------------------
def test_unique_sorted_flattened():
    x = np.array([[1, 3], [2, 3]], np.int64)
    y, first, inverse, counts = run("Unique", x, outputs=4)
    same(y, np.array([1, 2, 3], np.int64))
    same(first, np.array([0, 2, 1], np.int64))
    same(inverse, np.array([0, 2, 1, 2], np.int64))
    same(counts, np.array([1, 1, 2], np.int64))


def test_unique_first_occurrence_order():
    x = np.array([2, 1, 1, 3, 4, 3], np.float32)
    y, first, inverse, counts = run("Unique", x, sorted=0, outputs=4)
    same(y, np.array([2, 1, 3, 4], np.float32))
    same(first, np.array([0, 1, 3, 4], np.int64))
    same(inverse, np.array([0, 1, 1, 2, 3, 2], np.int64))
    same(counts, np.array([1, 2, 2, 1], np.int64))
    same(run("Unique", x, sorted=0), np.array([2, 1, 3, 4], np.float32))


def test_unique_along_an_axis():
    x = np.array([[[1, 1], [0, 1], [2, 1], [0, 1]],
                  [[1, 1], [0, 1], [2, 1], [0, 1]]], np.float32)
    y, first, inverse, counts = run("Unique", x, axis=1, outputs=4)
    same(y, np.array([[[0, 1], [1, 1], [2, 1]], [[0, 1], [1, 1], [2, 1]]], np.float32))
    same(first, np.array([1, 0, 2], np.int64))
    same(inverse, np.array([1, 0, 2, 0], np.int64))
    same(counts, np.array([2, 1, 1], np.int64))
    y, first, inverse, counts = run("Unique", x, axis=-2, sorted=0, outputs=4)
    same(y, x[:, :3])
    same(first, np.array([0, 1, 2], np.int64))
    same(inverse, np.array([0, 1, 2, 1], np.int64))
    same(counts, np.array([1, 2, 1], np.int64))


def test_unique_errors():
    g = GraphBuilder()
    with pytest.raises(ModelError, match="out of range"):
        g.op("Unique", g.constant(np.array([1, 2])), axis=1)


# -- Compress -----------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_compress(axis):
    x = np.arange(12, dtype=np.int16).reshape(3, 4)
    size = x.size if axis is None else x.shape[axis]
    cond = np.array([True, False, True, True] * 3)[:size]
    attrs = {} if axis is None else {"axis": axis}
    same(run("Compress", x, cond, **attrs), np.compress(cond, x, axis=axis))


def test_compress_short_condition_and_errors():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    same(run("Compress", x, np.array([False, True]), axis=1), x[:, [1]])
    same(run("Compress", x, np.array([False, False, False, False]), axis=1), x[:, []])
    with pytest.raises(DlcError, match="past the 3 slices"):
        run("Compress", x, np.array([False, True, False, True]), axis=1)
    g = GraphBuilder()
    with pytest.raises(ModelError, match="bool"):
        g.op("Compress", g.constant(x), g.constant(np.array([1, 0], np.int64)), axis=0)


# -- NonMaxSuppression --------------------------------------------------------------------
CORNER_BOXES = np.array([[[0.0, 0.0, 1.0, 1.0], [0.0, 0.1, 1.0, 1.1], [0.0, -0.1, 1.0, 0.9],
                          [0.0, 10.0, 1.0, 11.0], [0.0, 10.1, 1.0, 11.1],
                          [0.0, 100.0, 1.0, 101.0]]], np.float32)
CENTER_BOXES = np.array([[[0.5, 0.5, 1.0, 1.0], [0.5, 0.6, 1.0, 1.0], [0.5, 0.4, 1.0, 1.0],
                          [0.5, 10.5, 1.0, 1.0], [0.5, 10.6, 1.0, 1.0],
                          [0.5, 100.5, 1.0, 1.0]]], np.float32)
SCORES = np.array([[[0.9, 0.75, 0.6, 0.95, 0.5, 0.3]]], np.float32)


def nms(boxes, scores, *rest, **attrs):
    extra = [C(v, d) if v is not None else None
             for v, d in zip(rest, (np.int64, np.float32, np.float32))]
    return run("NonMaxSuppression", boxes, scores, *extra, **attrs)


@pytest.mark.parametrize("boxes, center", [(CORNER_BOXES, 0), (CENTER_BOXES, 1)])
def test_nms_box_formats(boxes, center):
    got = nms(boxes, SCORES, [3], [0.5], [0.0], center_point_box=center)
    same(got, np.array([[0, 0, 3], [0, 0, 0], [0, 0, 5]], np.int64))


def test_nms_thresholds_and_limits():
    same(nms(CORNER_BOXES, SCORES, [3], [0.5], [0.4]),
         np.array([[0, 0, 3], [0, 0, 0]], np.int64))
    same(nms(CORNER_BOXES, SCORES, [2], [0.5]), np.array([[0, 0, 3], [0, 0, 0]], np.int64))
    same(nms(CORNER_BOXES, SCORES), np.zeros((0, 3), np.int64))
    flipped = CORNER_BOXES[:, :, [2, 3, 0, 1]]  # corners given in the other order
    same(nms(flipped, SCORES, [3], [0.5]), np.array([[0, 0, 3], [0, 0, 0], [0, 0, 5]],
                                                    np.int64))


def test_nms_batches_classes_and_ties():
    boxes = np.concatenate([CORNER_BOXES, CORNER_BOXES + 1])
    scores = np.stack([np.concatenate([SCORES[0], np.full((1, 6), 0.5, np.float32)])] * 2)
    got = nms(boxes, scores, [2], [0.5], [0.0])
    want = [[0, 0, 3], [0, 0, 0], [0, 1, 0], [0, 1, 3],
            [1, 0, 3], [1, 0, 0], [1, 1, 0], [1, 1, 3]]
    same(got, np.array(want, np.int64))


def test_nms_errors():
    g = GraphBuilder()
    with pytest.raises(ModelError, match="batches"):
        g.op("NonMaxSuppression", g.constant(CORNER_BOXES), g.constant(SCORES[:, :, :5]))
    with pytest.raises(ModelError, match="center_point_box"):
        g.op("NonMaxSuppression", g.constant(CORNER_BOXES), g.constant(SCORES),
             center_point_box=2)
    with pytest.raises(ModelError, match="float32"):
        g.op("NonMaxSuppression", g.constant(CORNER_BOXES.astype(np.float64)),
             g.constant(SCORES))
