"""Resize and image/geometry operators: Resize, Upsample, GridSample, AffineGrid, RoiAlign,
Col2Im, CenterCropPad (dlc/ops/image.py)."""

import numpy as np

from dlc.errors import ModelError
from dlc.frontends.onnx.registry import converter, passthrough

# Resize 11 added the coordinate modes and the roi/sizes inputs, 13 made roi and scales
# optional, 18 added antialias/axes/keep_aspect_ratio_policy, 19 half_pixel_symmetric: the
# defaults of each addition give the earlier behaviour.
passthrough("Resize", since=11)
passthrough("AffineGrid", since=20)
passthrough("Col2Im", since=18)
passthrough("CenterCropPad", since=18)
passthrough("RoiAlign", since=16)
passthrough("GridSample", since=20)

#: Resize-10 and Upsample had no coordinate_transformation_mode: they sample at
#: ``x / scale`` and take the floor for nearest (``out[i] = in[floor(i / scale)]``).
LEGACY_RESIZE = {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}


def _legacy_mode(node, mode: str) -> str:
    mode = {"bilinear": "linear"}.get(mode, mode)
    if mode not in ("nearest", "linear"):
        raise ModelError(f"{node.op_type} node {node.name!r}: mode {mode!r} is not nearest "
                         "or linear")
    return mode


def _legacy_resize(cx, node, scales: str):
    attrs = cx.attributes(node)
    cx.emit("Resize", [node.input[0], "", scales], node.output,
            {"mode": _legacy_mode(node, attrs.get("mode", "nearest")), **LEGACY_RESIZE})


@converter("Resize", since=10)
def resize_v10(cx, node):
    _legacy_resize(cx, node, node.input[1])


@converter("Upsample", since=9)
def upsample_v9(cx, node):
    """Opsets 9 and 10: scales is an input."""
    _legacy_resize(cx, node, node.input[1])


@converter("Upsample", since=7)
def upsample_v7(cx, node):
    """Opsets 7 and 8: scales is an attribute."""
    scales = cx.attributes(node).get("scales") or []
    _legacy_resize(cx, node, cx.constant(np.array(scales, np.float32), "scales"))


@converter("Upsample", since=1)
def upsample_v1(cx, node):
    """Opsets 1-6: height_scale and width_scale of a 4-D input."""
    attrs = cx.attributes(node)
    scales = [1.0, 1.0, float(attrs.get("height_scale", 1.0)),
              float(attrs.get("width_scale", 1.0))]
    _legacy_resize(cx, node, cx.constant(np.array(scales, np.float32), "scales"))


@converter("RoiAlign", since=10)
def roi_align_v10(cx, node):
    """Opset 10 had no coordinate_transformation_mode: it did not shift by half a pixel."""
    attrs = cx.attributes(node, "RoiAlign")
    attrs["coordinate_transformation_mode"] = "output_half_pixel"
    cx.emit("RoiAlign", node.input, node.output, attrs)


@converter("GridSample", since=16)
def grid_sample_v16(cx, node):
    """Opset 16 (4-D only) named the modes bilinear and bicubic."""
    attrs = cx.attributes(node, "GridSample")
    attrs["mode"] = {"bilinear": "linear", "bicubic": "cubic"}.get(attrs["mode"], attrs["mode"])
    cx.emit("GridSample", node.input, node.output, attrs)
