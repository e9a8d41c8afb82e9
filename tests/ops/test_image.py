"""Resize (and the Upsample / Resize-10 converters), GridSample, AffineGrid, RoiAlign,
Col2Im, CenterCropPad: compiled results against scalar NumPy definitions written here,
known small outputs, and must-fail cases."""

import itertools
import math

import numpy as np
import pytest
from onnx import TensorProto, helper
from op_util import run_consts as run

import dlc
from dlc.errors import ModelError


def rand(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(dtype)


def resize(x, scales=None, sizes=None, roi=None, **attrs):
    inputs = [x, roi, scales, sizes]
    return run("Resize", inputs, consts=(1, 2, 3), **attrs)


# -- Resize: a scalar definition, one axis at a time -----------------------------------------
def source_coord(o, L, out, scale, mode, start=0.0, end=1.0, width=None):
    width = scale * L if width is None else width
    if mode == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        return L / 2 * (1 - out / width) + (o + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if out > 1 else 0.0
    if mode == "align_corners":
        return 0.0 if width == 1 else o * (L - 1) / (width - 1)
    if mode == "asymmetric":
        return o / scale
    if width == 1:
        return 0.5 * (start + end) * (L - 1)
    return start * (L - 1) + o * (end - start) * (L - 1) / (width - 1)


def kernel(mode, u, a):
    u = abs(u)
    if mode == "linear":
        return max(0.0, 1 - u)
    if u <= 1:
        return (a + 2) * u ** 3 - (a + 3) * u ** 2 + 1
    return a * u ** 3 - 5 * a * u ** 2 + 8 * a * u - 4 * a if u < 2 else 0.0


def resize_1d(v, out, scale, mode="nearest", coord="half_pixel", nearest="round_prefer_floor",
              a=-0.75, exclude=False, antialias=False, roi=(0.0, 1.0), extrap=0.0, width=None):
    L = len(v)
    res = np.zeros(out)
    for o in range(out):
        x = source_coord(o, L, out, scale, coord, *roi, width=width)
        if coord == "tf_crop_and_resize" and not 0 <= x <= L - 1:
            res[o] = extrap
            continue
        if mode == "nearest":
            i = {"round_prefer_floor": math.ceil(x - 0.5), "round_prefer_ceil":
                 math.floor(x + 0.5), "floor": math.floor(x), "ceil": math.ceil(x)}[nearest]
            res[o] = v[min(max(i, 0), L - 1)]
            continue
        s = min(scale, 1.0) if antialias else 1.0
        reach = (1 if mode == "linear" else 2) / s  # the kernel's support
        taps = [i for i in range(math.floor(x - reach) - 1, math.ceil(x + reach) + 2)
                if abs((i - x) * s) < (1 if mode == "linear" else 2)]
        w = np.array([kernel(mode, (i - x) * s, a) for i in taps])
        if exclude:
            w = np.where([0 <= i < L for i in taps], w, 0.0)
        if antialias or exclude:
            w = w / w.sum()
        res[o] = sum(wk * v[min(max(i, 0), L - 1)] for wk, i in zip(w, taps))
    return res


def resize_nd(x, outs, scales, **kw):
    y = x.astype(np.float64)
    rois = kw.pop("rois", None)
    widths = kw.pop("widths", None)
    for d, (out, s) in enumerate(zip(outs, scales)):
        if out == y.shape[d] and s == 1.0 and rois is None:
            continue
        extra = {}
        if rois is not None:
            extra["roi"] = rois[d]
        if widths is not None:
            extra["width"] = widths[d]
        y = np.apply_along_axis(resize_1d, d, y, out, s, **kw, **extra)
    return y


def test_resize_nearest_known_values():
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    y = resize(x, scales=np.array([1, 1, 2, 3], np.float32))
    np.testing.assert_array_equal(y[0, 0], [[1, 1, 1, 2, 2, 2]] * 2 + [[3, 3, 3, 4, 4, 4]] * 2)


@pytest.mark.parametrize("coord", ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel",
                                   "align_corners", "asymmetric"])
@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
def test_resize_scales(coord, mode):
    scales = (1.7, 0.6) if mode != "linear" else (0.5, 2.0)
    x = rand((1, 2, 5, 6), seed=1)
    y = resize(x, scales=np.array([1, 1, *scales], np.float32), mode=mode,
               coordinate_transformation_mode=coord)
    sc = [float(np.float32(s)) for s in scales]
    outs = [math.floor(5 * sc[0]), math.floor(6 * sc[1])]
    want = resize_nd(x, [1, 2] + outs, [1.0, 1.0] + sc, mode=mode, coord=coord)
    assert y.shape == want.shape
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("nearest", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"])
@pytest.mark.parametrize("coord", ["asymmetric", "half_pixel", "align_corners"])
def test_resize_nearest_modes(nearest, coord):
    x = rand((1, 1, 4, 5), seed=2)
    y = resize(x, sizes=np.array([1, 1, 8, 3], np.int64), nearest_mode=nearest,
               coordinate_transformation_mode=coord)
    want = resize_nd(x, [1, 1, 8, 3], [1.0, 1.0, 2.0, 0.6], nearest=nearest, coord=coord)
    np.testing.assert_array_equal(y, want.astype(np.float32))


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("antialias,exclude", [(0, 1), (1, 0), (1, 1)])
def test_resize_antialias_and_exclude_outside(mode, antialias, exclude):
    x = rand((1, 1, 9, 8), seed=3)
    y = resize(x, sizes=np.array([4, 3], np.int64), axes=[2, 3], mode=mode,
               antialias=antialias, exclude_outside=exclude, cubic_coeff_a=-0.5)
    want = resize_nd(x, [1, 1, 4, 3], [1.0, 1.0, 4 / 9, 3 / 8], mode=mode,
                     antialias=bool(antialias), exclude=bool(exclude), a=-0.5)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_resize_tf_crop_and_resize():
    x = rand((1, 1, 5, 6), seed=4)
    roi = np.array([0.2, 0.1, 1.1, 0.7], np.float32)
    y = resize(x, sizes=np.array([4, 3], np.int64), roi=roi, axes=[2, 3], mode="linear",
               coordinate_transformation_mode="tf_crop_and_resize", extrapolation_value=9.0)
    r = roi.astype(np.float64)
    want = resize_nd(x, [1, 1, 4, 3], [1.0, 1.0, 4 / 5, 3 / 6], mode="linear",
                     coord="tf_crop_and_resize", extrap=9.0,
                     rois=[(0, 1), (0, 1), (r[0], r[2]), (r[1], r[3])])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    assert (y[0, 0, -1] == 9.0).all()


def test_resize_tf_crop_and_resize_scales_size_follows_the_spec():
    """With scales, the spec's output size is floor(size * (roi_end - roi_start) * scale)."""
    x = rand((1, 1, 8, 8), seed=5)
    roi = np.array([0, 0, 0.25, 0, 1, 1, 0.75, 1], np.float32)
    y = resize(x, scales=np.array([1, 1, 2, 1], np.float32), roi=roi, mode="linear",
               coordinate_transformation_mode="tf_crop_and_resize")
    assert y.shape == (1, 1, 8, 8)
    r = roi.astype(np.float64)
    want = resize_nd(x, [1, 1, 8, 8], [1.0, 1.0, 2.0, 1.0], mode="linear",
                     coord="tf_crop_and_resize", rois=[(0, 1), (0, 1), (r[2], r[6]), (0, 1)],
                     widths=[1, 1, 8 * 0.5 * 2, 8])
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("policy,want_shape", [("stretch", (1, 1, 7, 8)),
                                               ("not_larger", (1, 1, 7, 7)),
                                               ("not_smaller", (1, 1, 8, 8))])
def test_resize_keep_aspect_ratio(policy, want_shape):
    x = rand((1, 1, 2, 2), seed=6)
    y = resize(x, sizes=np.array([7, 8], np.int64), axes=[-2, -1],
               keep_aspect_ratio_policy=policy)
    assert y.shape == want_shape
    s = {"stretch": (3.5, 4.0), "not_larger": (3.5, 3.5), "not_smaller": (4.0, 4.0)}[policy]
    want = resize_nd(x, list(want_shape), [1.0, 1.0, *s])
    np.testing.assert_array_equal(y, want.astype(np.float32))


@pytest.mark.parametrize("dtype", ["uint8", "int32", "float16", "float64"])
def test_resize_dtypes(dtype):
    base = np.array([[[[0, 255, 0, 255], [255, 0, 255, 0]]]], np.float64)
    x = (base if dtype in ("uint8", "int32") else base / 255).astype(dtype)
    y = resize(x, scales=np.array([1, 1, 2, 1.5], np.float32), mode="cubic")
    assert y.dtype == np.dtype(dtype)
    want = resize_nd(x, [1, 1, 4, 6], [1.0, 1.0, 2.0, 1.5], mode="cubic")
    if dtype == "uint8":  # cubic overshoots: rounded, then saturated
        want = np.clip(np.round(want), 0, 255)
    elif dtype == "int32":
        want = np.round(want)
    tol = 2e-3 if dtype == "float16" else 1e-6
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=tol, atol=tol)


def _model(node, inputs, opset, inits=()):
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, None)], initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("opset,mode", [(1, "nearest"), (1, "bilinear"), (7, "linear"),
                                        (9, "nearest"), (10, "linear")])
def test_upsample_and_resize_10_are_asymmetric(opset, mode):
    x = rand((1, 1, 3, 4), seed=7)
    vi = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3, 4])
    scales = np.array([1, 1, 2, 1.5], np.float32)
    inits = []
    op = "Resize" if opset == 10 and mode == "linear" else "Upsample"
    if opset == 1:
        node = helper.make_node(op, ["x"], ["y"], mode=mode, height_scale=2.0, width_scale=1.5)
    elif opset == 7:
        node = helper.make_node(op, ["x"], ["y"], mode=mode, scales=scales.tolist())
    else:
        inits = [helper.make_tensor("s", TensorProto.FLOAT, [4], scales)]
        node = helper.make_node(op, ["x", "s"], ["y"], mode=mode)
    (y,) = dlc.compile(_model(node, [vi], opset, inits)).run(x)
    kind = "nearest" if mode == "nearest" else "linear"
    want = resize_nd(x, [1, 1, 6, 6], [1.0, 1.0, 2.0, 1.5], mode=kind, coord="asymmetric",
                     nearest="floor")
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw,match", [
    ({"scales": np.array([1, 1, 2, 2], np.float32), "sizes": np.array([1, 1, 4, 4])},
     "exactly one"),
    ({}, "exactly one"),
    ({"scales": np.array([2, 2], np.float32)}, "one per axis"),
    ({"scales": np.array([1, 1, 0, 2], np.float32)}, "positive"),
    ({"scales": np.array([1, 1, 2, 2], np.float32), "mode": "area"}, "mode"),
    ({"scales": np.array([1, 1, 2, 2], np.float32), "nearest_mode": "up"}, "nearest_mode"),
    ({"scales": np.array([1, 1, 2, 2], np.float32),
      "coordinate_transformation_mode": "tf_crop_and_resize"}, "roi"),
    ({"sizes": np.array([4, 4]), "axes": [2, 2]}, "repeats"),
])
def test_resize_must_fail(kw, match):
    with pytest.raises(ModelError, match=match):
        resize(rand((1, 1, 2, 2)), **kw)


# -- GridSample ------------------------------------------------------------------------------
def reflect(x, lo, hi):
    rng = hi - lo
    if rng == 0:
        return lo
    while x < lo or x > hi:
        x = 2 * lo - x if x < lo else 2 * hi - x
    return x


def grid_sample(x, grid, mode="linear", padding="zeros", align=0):
    N, C = x.shape[:2]
    sizes = x.shape[2:]
    r = len(sizes)
    out = np.zeros((N, C) + grid.shape[1:-1])
    for n in range(N):
        for o in itertools.product(*[range(s) for s in grid.shape[1:-1]]):
            pos = []
            for d in range(r):
                g, L = float(grid[(n, *o, r - 1 - d)]), sizes[d]
                c = (g + 1) / 2 * (L - 1) if align else ((g + 1) * L - 1) / 2
                lo, hi = (0, L - 1) if align else (-0.5, L - 0.5)
                if mode == "nearest":
                    c = float(np.rint(c))
                if padding == "border" and not lo <= c <= hi:  # like ONNX's reference and
                    c = min(max(c, 0), L - 1)                  # onnxruntime (not PyTorch)
                elif padding == "reflection":
                    c = reflect(c, lo, hi)
                pos.append((c, L, lo, hi))
            taps = []
            for c, L, lo, hi in pos:
                f = math.floor(c)
                if mode == "nearest":
                    cand = [(int(c), 1.0)]
                elif mode == "linear":
                    cand = [(f, 1 - (c - f)), (f + 1, c - f)]
                else:
                    t = c - f
                    cand = [(f + k, kernel("cubic", k - t, -0.75)) for k in (-1, 0, 1, 2)]
                fixed = []
                for i, w in cand:
                    if padding == "zeros" and not 0 <= i < L:
                        w = 0.0
                    elif padding == "reflection":
                        i = int(reflect(float(i), lo, hi))
                    fixed.append((min(max(i, 0), L - 1), w))
                taps.append(fixed)
            for combo in itertools.product(*taps):
                w = np.prod([t[1] for t in combo])
                out[(n, slice(None), *o)] += w * x[(n, slice(None), *[t[0] for t in combo])]
    return out


@pytest.mark.parametrize("mode", ["nearest", "linear", "cubic"])
@pytest.mark.parametrize("padding", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("align", [0, 1])
def test_grid_sample_2d(mode, padding, align):
    x = rand((1, 2, 4, 5), seed=8)
    grid = rand((1, 3, 4, 2), seed=9) * 1.6  # some positions fall outside
    y = run("GridSample", [x, grid], mode=mode, padding_mode=padding, align_corners=align)
    want = grid_sample(x, grid, mode, padding, align)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_grid_sample_3d_and_integers(mode):
    x = rand((2, 1, 3, 4, 2), seed=10)
    grid = rand((2, 2, 2, 3, 3), seed=11) * 1.3
    y = run("GridSample", [x, grid], mode=mode, padding_mode="border")
    np.testing.assert_allclose(y, grid_sample(x, grid, mode, "border"), rtol=1e-5, atol=1e-5)
    xi = np.arange(12, dtype=np.int32).reshape(1, 1, 3, 4)
    gi = rand((1, 2, 2, 2), seed=12)
    yi = run("GridSample", [xi, gi], mode="nearest")
    np.testing.assert_array_equal(yi, grid_sample(xi, gi, "nearest").astype(np.int32))


def test_grid_sample_opset_16_mode_names():
    x, grid = rand((1, 1, 3, 3), seed=13), rand((1, 2, 2, 2), seed=14)
    node = helper.make_node("GridSample", ["x", "g"], ["y"], mode="bicubic")
    vi = helper.make_tensor_value_info
    model = _model(node, [vi("x", TensorProto.FLOAT, [1, 1, 3, 3]),
                          vi("g", TensorProto.FLOAT, [1, 2, 2, 2])], 16)
    (y,) = dlc.compile(model).run(x, grid)
    np.testing.assert_allclose(y, grid_sample(x, grid, "cubic"), rtol=1e-5, atol=1e-5)


def test_grid_sample_must_fail():
    with pytest.raises(ModelError, match="grid"):
        run("GridSample", [rand((1, 1, 3, 3)), rand((1, 2, 2, 3))])
    with pytest.raises(ModelError, match="floating-point"):
        run("GridSample", [np.zeros((1, 1, 3, 3), np.int32), rand((1, 2, 2, 2))])
    with pytest.raises(ModelError, match="padding_mode"):
        run("GridSample", [rand((1, 1, 3, 3)), rand((1, 2, 2, 2))], padding_mode="wrap")


# -- AffineGrid ------------------------------------------------------------------------------
def base(size, align):
    if align:
        return np.linspace(-1, 1, size) if size > 1 else np.array([-1.0])
    return (2 * np.arange(size) + 1) / size - 1


@pytest.mark.parametrize("align", [0, 1])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (1, 1, 2, 3, 4), (1, 2, 1, 3)])
def test_affine_grid(align, size):
    r = len(size) - 2
    theta = rand((size[0], r, r + 1), seed=15)
    y = run("AffineGrid", [theta, np.array(size, np.int64)], consts=(1,), align_corners=align)
    axes = np.meshgrid(*[base(s, align) for s in size[2:]], indexing="ij")
    homo = np.stack(list(axes[::-1]) + [np.ones(size[2:])], axis=-1)  # x (innermost) first
    want = np.einsum("nij,...j->n...i", theta.astype(np.float64), homo)
    assert y.shape == (size[0], *size[2:], r)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_affine_grid_must_fail():
    with pytest.raises(ModelError, match="theta"):
        run("AffineGrid", [rand((1, 2, 3)), np.array([1, 1, 2, 2, 2], np.int64)], consts=(1,))


# -- RoiAlign --------------------------------------------------------------------------------
def roi_align(x, rois, bidx, oh, ow, ratio, scale, mode, half):
    H, W = x.shape[2:]
    out = np.zeros((len(rois), x.shape[1], oh, ow))
    for r, roi in enumerate(rois.astype(np.float64)):
        off = 0.5 if half else 0.0
        x1, y1, x2, y2 = roi * scale - off
        rw, rh = x2 - x1, y2 - y1
        if not half:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        bh, bw = rh / oh, rw / ow
        gy = ratio or math.ceil(rh / oh)
        gx = ratio or math.ceil(rw / ow)
        for i, j in itertools.product(range(oh), range(ow)):
            vals = []
            for iy, ix in itertools.product(range(max(gy, 0)), range(max(gx, 0))):
                yy = y1 + i * bh + (iy + 0.5) * bh / gy
                xx = x1 + j * bw + (ix + 0.5) * bw / gx
                if yy < -1 or yy > H or xx < -1 or xx > W:
                    vals.append(np.zeros((4, x.shape[1])))
                    continue
                yy, xx = max(yy, 0), max(xx, 0)
                yl, xl = min(int(yy), H - 1), min(int(xx), W - 1)
                yy, xx = (yl, xx) if yl == H - 1 else (yy, xx)
                xx = xl if xl == W - 1 else xx
                yh, xh = min(yl + 1, H - 1), min(xl + 1, W - 1)
                ly, lx = yy - yl, xx - xl
                img = x[int(bidx[r])]
                vals.append(np.stack([(1 - ly) * (1 - lx) * img[:, yl, xl],
                                      (1 - ly) * lx * img[:, yl, xh],
                                      ly * (1 - lx) * img[:, yh, xl], ly * lx * img[:, yh, xh]]))
            if not vals:
                continue
            vals = np.array(vals)
            if mode == "avg":
                out[r, :, i, j] = vals.sum(axis=(0, 1)) / max(gy * gx, 1)
            else:
                out[r, :, i, j] = vals.max(axis=1).max(axis=0)
    return out


@pytest.mark.parametrize("mode,ratio,half", [("avg", 0, True), ("max", 0, True),
                                             ("avg", 2, False), ("max", 2, True),
                                             ("avg", 0, False)])
def test_roi_align(mode, ratio, half):
    x = rand((2, 3, 6, 7), seed=16)
    rois = np.array([[0.5, 1.0, 5.0, 4.5], [-2.0, -1.0, 9.0, 8.0], [3.0, 2.0, 3.2, 2.1],
                     [1.0, 1.0, 20.0, 3.0]], np.float32)
    bidx = np.array([0, 1, 1, 0], np.int64)
    y = run("RoiAlign", [x, rois, bidx], output_height=2, output_width=3, sampling_ratio=ratio,
            spatial_scale=0.9, mode=mode,
            coordinate_transformation_mode="half_pixel" if half else "output_half_pixel")
    want = roi_align(x, rois, bidx, 2, 3, ratio, np.float32(0.9), mode, half)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


def test_roi_align_must_fail():
    with pytest.raises(ModelError, match="batch_indices"):
        run("RoiAlign", [rand((1, 1, 4, 4)), rand((2, 4)), np.zeros(3, np.int64)])
    with pytest.raises(ModelError, match="mode"):
        run("RoiAlign", [rand((1, 1, 4, 4)), rand((2, 4)), np.zeros(2, np.int64)], mode="sum")


# -- Col2Im ----------------------------------------------------------------------------------
@pytest.mark.parametrize("image,block,attrs", [
    ((5, 5), (2, 2), {}),
    ((6, 7), (3, 2), {"strides": [2, 1], "pads": [1, 0, 0, 1], "dilations": [1, 2]}),
    ((4, 3, 5), (2, 1, 2), {"strides": [1, 2, 2], "pads": [0, 1, 0, 1, 0, 1]}),
])
def test_col2im(image, block, attrs):
    r = len(image)
    strides = attrs.get("strides", [1] * r)
    dil = attrs.get("dilations", [1] * r)
    pads = attrs.get("pads", [0] * 2 * r)
    blocks = [(image[d] + pads[d] + pads[r + d] - dil[d] * (block[d] - 1) - 1) // strides[d] + 1
              for d in range(r)]
    C, K, L = 2, int(np.prod(block)), int(np.prod(blocks))
    x = rand((2, C * K, L), seed=17)
    y = run("Col2Im", [x, np.array(image, np.int64), np.array(block, np.int64)], consts=(1, 2),
            **attrs)
    want = np.zeros((2, C, *image))
    cols = x.reshape(2, C, K, L)
    for k, kidx in enumerate(itertools.product(*[range(b) for b in block])):
        for lidx, pos in enumerate(itertools.product(*[range(b) for b in blocks])):
            p = [pos[d] * strides[d] - pads[d] + kidx[d] * dil[d] for d in range(r)]
            if all(0 <= p[d] < image[d] for d in range(r)):
                want[(slice(None), slice(None), *p)] += cols[:, :, k, lidx]
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_col2im_must_fail():
    with pytest.raises(ModelError, match="blocks"):
        run("Col2Im", [rand((1, 4, 5)), np.array([3, 3]), np.array([2, 2])], consts=(1, 2))
    with pytest.raises(ModelError, match="multiple"):
        run("Col2Im", [rand((1, 5, 4)), np.array([3, 3]), np.array([2, 2])], consts=(1, 2))


# -- CenterCropPad ---------------------------------------------------------------------------
def center_crop_pad(x, shape, axes):
    y = x
    for a, s in zip(axes, shape):
        n = y.shape[a]
        if s <= n:
            start = (n - s) // 2
            y = np.take(y, range(start, start + s), axis=a)
        else:
            before = (s - n) // 2
            width = [(0, 0)] * y.ndim
            width[a] = (before, s - n - before)
            y = np.pad(y, width)
    return y


@pytest.mark.parametrize("shape,target,axes", [
    ((4, 5, 3), (2, 8, 3), None), ((5, 6), (3,), [1]), ((3, 7, 2), (6, 2), [-3, 1]),
    ((2, 3), (0, 3), None),
])
@pytest.mark.parametrize("dtype", ["float32", "int64", "bool"])
def test_center_crop_pad(shape, target, axes, dtype):
    x = (np.arange(np.prod(shape)).reshape(shape) % 3).astype(dtype)
    attrs = {"axes": axes} if axes else {}
    y = run("CenterCropPad", [x, np.array(target, np.int64)], consts=(1,), **attrs)
    norm = [a % len(shape) for a in axes] if axes else list(range(len(shape)))
    np.testing.assert_array_equal(y, center_crop_pad(x, target, norm))


def test_center_crop_pad_must_fail():
    with pytest.raises(ModelError, match="one non-negative size per axis"):
        run("CenterCropPad", [rand((3, 3)), np.array([2], np.int64)], consts=(1,))
