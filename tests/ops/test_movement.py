"""Data movement (dlc/ops/movement.py) against NumPy expectations written here: Concat,
Split, Slice, Pad, Tile, DepthToSpace, SpaceToDepth, Trilu, ReverseSequence; must-fail
cases for bad attributes, shapes and values."""

import numpy as np
import pytest
from op_util import C, data, fails, onnx_vs_ort, run, same

from dlc.errors import DlcError, ModelError
from dlc.graph import GraphBuilder

INT_MAX, INT_MIN = 2**63 - 1, -2**63


# -- Concat -------------------------------------------------------------------------------
@pytest.mark.parametrize("axis, dtype", [(0, "float32"), (1, "int8"), (-1, "bool"),
                                         (2, "float16")])
def test_concat(axis, dtype):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    shapes = [tuple(s + k if d == axis % 3 else s for d, s in enumerate(shape))
              for k, shape in enumerate(shapes)]
    xs = [data(s, dtype, seed=k) for k, s in enumerate(shapes)]
    same(run("Concat", *xs, axis=axis), np.concatenate(xs, axis=axis))


def test_concat_one_input():
    x = data((3,), "int64")
    same(run("Concat", x, axis=0), x)


def test_concat_with_an_empty_input():
    a, b = data((0, 3)), data((2, 3))
    same(run("Concat", a, b, axis=0), b)


def test_concat_errors():
    fails("Concat", data((2, 3)), data((3, 3)), axis=1, match="differ outside axis")
    fails("Concat", data((2, 3)), data((2, 3), "int32"), axis=0, match="one dtype")
    fails("Concat", data(()), data(()), axis=0, match="scalars")
    fails("Concat", data((2, 3)), data((2, 3)), axis=2, match="out of range")
    fails("Concat", data((2, 3)), data((2, 3, 1)), axis=0, match="differ")


# -- Split --------------------------------------------------------------------------------
def test_split_sizes():
    x = data((2, 6), "int32")
    got = run("Split", x, C([1, 2, 3]), axis=1, outputs=3)
    for g, w in zip(got, np.split(x, [1, 3], axis=1)):
        same(g, w)


@pytest.mark.parametrize("size, count, axis", [(6, 3, 0), (5, 3, 0), (7, 4, -1), (3, 1, 0)])
def test_split_num_outputs(size, count, axis):
    x = data((size, 2) if axis == 0 else (2, size))
    chunk = -(-size // count)
    cuts = [chunk * k for k in range(1, count)]
    got = run("Split", x, num_outputs=count, axis=axis, outputs=count)
    got = got if count > 1 else [got]
    for g, w in zip(got, np.split(x, cuts, axis=axis)):
        same(g, w)


def test_split_with_an_empty_part():
    x = data((4, 3))
    got = run("Split", x, C([0, 4]), outputs=2)
    same(got[1], x)


def test_split_errors():
    x = data((5, 2))
    fails("Split", x, C([2, 2]), match="add up")
    fails("Split", x, C([2, 3]), num_outputs=2, match="not both")
    fails("Split", x, match="num_outputs")
    fails("Split", x, num_outputs=4, match="smaller last part")
    fails("Split", x, num_outputs=0, match="at least 1")


# -- Slice --------------------------------------------------------------------------------
SLICES = [
    # starts, ends, axes, steps, numpy index
    ([1, 0], [3, 10], None, None, np.s_[1:3, 0:10]),
    ([0], [-1], [1], None, np.s_[:, 0:-1]),
    ([-1], [INT_MIN], [0], [-1], np.s_[::-1]),
    ([20, 1], [-20, 3], [0, 1], [-2, 1], np.s_[::-2, 1:3]),
    ([-3], [INT_MAX], [-1], [2], np.s_[:, -3::2]),
    ([1, 1], [1000, 4], [0, 1], [3, 2], np.s_[1::3, 1:4:2]),
    ([5], [1], [0], [-2], np.s_[5:1:-2]),
    ([0], [-100], [0], [1], np.s_[0:0]),
    ([3], [0], [1], [1], np.s_[:, 3:0]),
]


@pytest.mark.parametrize("starts, ends, axes, steps, index", SLICES)
def test_slice(starts, ends, axes, steps, index):
    x = data((7, 5), "int64")
    args = [x, C(starts), C(ends), C(axes) if axes is not None else None,
            C(steps) if steps is not None else None]
    same(run("Slice", *args), x[index])


def test_slice_int32_values_and_3d():
    x = data((3, 4, 5), "float16")
    got = run("Slice", x, C([-1, 1], np.int32), C([-4, 5], np.int32), C([2, 0], np.int32),
              C([-1, 1], np.int32))
    same(got, x[1:5, :, -1:-4:-1])


def test_slice_errors():
    x = data((4, 4))
    fails("Slice", x, C([0]), C([2]), C([0]), C([0]), match="step of axis 0 is 0")
    fails("Slice", x, C([0, 0]), C([2, 2]), C([1, -1]), match="repeats")
    fails("Slice", x, C([0, 0]), C([2]), match="different lengths")
    fails("Slice", x, C([0]), C([2]), C([2]), match="out of range")


# -- Pad ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", [[0, 2, 1, 1], [1, 0, 0, 3], [5, 7, 4, 9]])
def test_pad_modes(mode, pads):
    x = data((3, 4), "float32")
    widths = [(pads[0], pads[2]), (pads[1], pads[3])]
    same(run("Pad", x, C(pads), mode=mode), np.pad(x, widths, mode=mode))


def test_pad_constant_value_and_axes():
    x = data((2, 3, 4), "int32")
    got = run("Pad", x, C([1, 0, 2, 3]), np.array(-7, np.int32), C([-1, 0]))
    same(got, np.pad(x, [(0, 3), (0, 0), (1, 2)], constant_values=-7))
    b = data((2, 2), "bool")
    same(run("Pad", b, C([1, 1, 1, 1]), np.array(True)),
         np.pad(b, 1, constant_values=True))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
def test_pad_negative_pads_crop_first(mode):
    x = data((5, 6), "float64")
    pads = [-1, 2, -2, -3]  # crop axis 0 by 1 and 2, axis 1 by 3 at the end, pad 2 before
    cropped = x[1:3, 0:3]
    want = np.pad(cropped, [(0, 0), (2, 0)], mode=mode)
    same(run("Pad", x, C(pads), mode=mode), want)


def test_pad_single_element_axis_and_scalar_constant_shape():
    x = data((1, 3))
    same(run("Pad", x, C([2, 0, 2, 0]), mode="reflect"), np.pad(x, [(2, 2), (0, 0)],
                                                               mode="reflect"))
    same(run("Pad", x, C([0, 1, 0, 1]), np.array([2.5], np.float32)),
         np.pad(x, [(0, 0), (1, 1)], constant_values=2.5))


def test_pad_errors():
    x = data((2, 3))
    fails("Pad", x, C([1, 1]), match="expected 4")
    fails("Pad", x, C([0, 0, 0, 0]), mode="symmetric", match="mode")
    fails("Pad", x, C([-3, 0, 0, 0]), match="crop more")
    fails("Pad", x, C([-2, 0, 1, 0]), mode="edge", match="no elements")
    fails("Pad", x, C([1, 1, 1, 1]), np.array(1, np.int32), match="constant_value")
    fails("Pad", x, C([1, 1]), None, C([0, 0]), match="repeats")


# -- Tile ---------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, reps", [((2, 3), [2, 1]), ((2, 1, 3), [1, 4, 2]),
                                         ((3,), [3]), ((1, 1), [2, 3])])
def test_tile(shape, reps):
    x = data(shape, "uint16")
    same(run("Tile", x, C(reps)), np.tile(x, reps))


def test_tile_errors():
    fails("Tile", data((2, 3)), C([2]), match="2 non-negative")
    fails("Tile", data((2, 3)), C([2, -1]), match="non-negative")


# -- DepthToSpace, SpaceToDepth -----------------------------------------------------------
def depth_to_space(x, bs, mode):
    b, c, h, w = x.shape
    if mode == "DCR":
        t = x.reshape(b, bs, bs, c // bs**2, h, w).transpose(0, 3, 4, 1, 5, 2)
    else:
        t = x.reshape(b, c // bs**2, bs, bs, h, w).transpose(0, 1, 4, 2, 5, 3)
    return t.reshape(b, c // bs**2, h * bs, w * bs)


@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("shape, bs", [((1, 8, 2, 3), 2), ((2, 18, 1, 2), 3), ((1, 3, 2, 2), 1)])
def test_depth_to_space_and_back(mode, shape, bs):
    x = data(shape, "int8")
    y = run("DepthToSpace", x, blocksize=bs, mode=mode)
    same(y, depth_to_space(x, bs, mode))
    same(run("SpaceToDepth", y, blocksize=bs, mode=mode), x)


def test_space_to_depth_dcr_layout():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    got = run("SpaceToDepth", x, blocksize=2)
    same(got[0, :, 0, 0], np.array([0, 1, 4, 5], np.float32))
    same(got[0, :, 1, 1], np.array([10, 11, 14, 15], np.float32))


def test_block_errors():
    fails("DepthToSpace", data((1, 6, 2, 2)), blocksize=2, match="multiple")
    fails("DepthToSpace", data((1, 8, 2, 2)), blocksize=2, mode="XYZ", match="mode")
    fails("SpaceToDepth", data((1, 1, 3, 4)), blocksize=2, match="multiples")
    fails("SpaceToDepth", data((1, 4, 4)), blocksize=2, match="rank 4")
    fails("SpaceToDepth", data((1, 1, 4, 4)), blocksize=0, match="at least 1")
    g = GraphBuilder()
    with pytest.raises(DlcError, match="required"):
        g.op("DepthToSpace", g.input("x", (1, 4, 1, 1)))


# -- Trilu --------------------------------------------------------------------------------
@pytest.mark.parametrize("upper", [0, 1])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 3), (1, 6)])
def test_trilu(upper, shape):
    x = data(shape, "float32")
    want = np.triu(x) if upper else np.tril(x)
    same(run("Trilu", x, upper=upper), want)


@pytest.mark.parametrize("k", [-2, 1, 9])
def test_trilu_with_k(k):
    x = data((4, 5), "int32")
    same(run("Trilu", x, np.array(k, np.int64), upper=1), np.triu(x, k))


def test_trilu_errors():
    fails("Trilu", data((3,)), match="rank 2")
    fails("Trilu", data((3, 3)), np.array(1, np.int32), match="int64")


# -- ReverseSequence ----------------------------------------------------------------------
@pytest.mark.parametrize("batch_axis, time_axis", [(1, 0), (0, 1)])
def test_reverse_sequence(batch_axis, time_axis):
    x = data((4, 5, 2) if time_axis == 0 else (5, 4, 2), "float32")
    lens = np.array([4, 0, 1, 3, 2], np.int64)
    want = x.copy()
    for b, n in enumerate(lens):
        index = [slice(None)] * 3
        index[batch_axis], index[time_axis] = b, slice(0, n)
        rev = list(index)
        rev[time_axis] = slice(n - 1, None, -1) if n else slice(0, 0)
        want[tuple(index)] = x[tuple(rev)]
    same(run("ReverseSequence", x, lens, batch_axis=batch_axis, time_axis=time_axis), want)


def test_reverse_sequence_errors():
    x = data((4, 3))
    fails("ReverseSequence", x, np.array([1, 2, 3], np.int64), batch_axis=0, time_axis=0,
          match="0 and 1")
    fails("ReverseSequence", x, np.array([1, 2], np.int64), match="int64\\[3\\]")
    fails("ReverseSequence", x, np.array([1, 2, 3], np.int32), match="int64")


# -- ONNX converters of older opsets, against onnxruntime ---------------------------------
def test_split_converters():
    x = {"x": data((6, 4))}
    onnx_vs_ort("Split", x, 11, outputs=3, axis=0, split=[1, 2, 3])
    onnx_vs_ort("Split", x, 11, outputs=2, axis=1)
    onnx_vs_ort("Split", x, 13, outputs=3)
    onnx_vs_ort("Split", x, 13, outputs=2, initializers={"s": np.array([2, 4], np.int64)})
    onnx_vs_ort("Split", {"x": data((7, 4))}, 18, outputs=4, axis=0, num_outputs=4)


def test_split_converter_errors():
    with pytest.raises(ModelError, match="3 parts but has 2 outputs"):
        onnx_vs_ort("Split", {"x": data((6, 4))}, 11, outputs=2, split=[1, 2, 3])
    with pytest.raises(ModelError, match="equal parts"):
        onnx_vs_ort("Split", {"x": data((5, 4))}, 13, outputs=2)


def test_slice_and_pad_converters():
    x = {"x": data((5, 6))}
    onnx_vs_ort("Slice", x, 9, starts=[1, -4], ends=[100, -1], axes=[0, 1])
    onnx_vs_ort("Slice", x, 7, starts=[2], ends=[4])
    onnx_vs_ort("Pad", x, 10, pads=[1, 0, 2, 3], value=1.5)
    onnx_vs_ort("Pad", x, 7, pads=[0, 2, 1, 1], mode="reflect")
    onnx_vs_ort("Pad", x, 10, pads=[2, 2, 0, 1], mode="edge")
