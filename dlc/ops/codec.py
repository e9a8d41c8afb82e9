"""ImageDecoder: encoded image bytes to an ``[H, W, C]`` uint8 tensor, on the host (the
output shape depends on the bytes).

dlc decodes, with the standard library only, the lossless formats whose decoding is
fully specified: PNG (8-bit gray, gray+alpha, RGB, RGBA and palette images, not
interlaced), BMP (uncompressed 24- and 32-bit), PNM (P5/P6 with 8-bit samples) and
uncompressed 8-bit TIFF. JPEG, JPEG 2000 and WebP need an image codec (and its exact
rounding): they are decoded by Pillow when it is installed (``pip install "dlc[images]"``;
the ONNX reference decodes with Pillow too), else they raise UnsupportedOpError. Alpha is
dropped; Grayscale uses ITU-R 601-2 luma with PIL's integer
rounding.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from dlc.errors import ModelError, UnsupportedOpError
from dlc.ops.host import HostOp
from dlc.ops.registry import check_dtype, register

PIXEL_FORMATS = ("RGB", "BGR", "Grayscale")
_CODEC_MAGIC = ((b"\xff\xd8", "JPEG"), (b"\x00\x00\x00\x0cjP", "JPEG 2000"),
                (b"\xffO\xffQ", "JPEG 2000"))


@register
class ImageDecoder(HostOp):
    name = "ImageDecoder"
    attrs = {"pixel_format": "RGB"}

    def check(self, ctx):
        check_dtype(ctx, 0, ("uint8",))
        if ctx.type(0).ndim != 1:
            raise ctx.error(f"encoded_stream must be 1-D, got shape {list(ctx.type(0).shape)}")
        if ctx.attrs["pixel_format"] not in PIXEL_FORMATS:
            raise ctx.error(f"pixel_format must be one of {', '.join(PIXEL_FORMATS)}, got "
                            f"{ctx.attrs['pixel_format']!r}")

    def evaluate(self, ctx, encoded):
        data = encoded.tobytes()
        try:
            rgb = decode_rgb(data)
        except (ValueError, IndexError, KeyError, struct.error, zlib.error) as err:
            raise ModelError(f"ImageDecoder node {ctx.name!r}: the image is malformed or uses "
                             f"an unsupported variant ({err})") from None
        fmt = ctx.attrs["pixel_format"]
        if fmt == "BGR":
            return [np.ascontiguousarray(rgb[:, :, ::-1])]
        if fmt == "Grayscale":
            luma = rgb.astype(np.uint32) @ np.array([19595, 38470, 7471], np.uint32)
            return [((luma + 0x8000) >> 16).astype(np.uint8)[:, :, None]]
        return [rgb]


def decode_rgb(data: bytes) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB pixels of an encoded image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _png(data)
    if data.startswith(b"BM"):
        return _bmp(data)
    if data[:2] in (b"P5", b"P6"):
        return _pnm(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff(data)
    fmt = next((name for magic, name in _CODEC_MAGIC if data.startswith(magic)), None)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        fmt = "WebP"
    if fmt:
        return _with_pillow(data, fmt)
    raise ValueError("not a PNG, BMP, PNM, TIFF, JPEG, JPEG 2000 or WebP stream")


def _with_pillow(data: bytes, fmt: str) -> np.ndarray:
    """RGB pixels of a JPEG, JPEG 2000 or WebP stream, decoded by Pillow."""
    try:
        import io

        from PIL import Image
    except ImportError:
        raise UnsupportedOpError(f"ImageDecoder: {fmt} images need Pillow (pip install "
                                 "'dlc[images]'); without it dlc decodes PNG, BMP, PNM and "
                                 "uncompressed TIFF only") from None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.ascontiguousarray(np.asarray(image.convert("RGB"), np.uint8))
    except (OSError, SyntaxError) as err:  # Pillow's errors for bad or truncated streams
        raise ValueError(f"{fmt} stream cannot be decoded: {err}") from None


def _rgb(pixels: np.ndarray, channels: int, palette=None) -> np.ndarray:
    """RGB from gray (1), gray+alpha (2), RGB (3), RGBA (4) or palette indices."""
    if palette is not None:
        return palette[pixels[:, :, 0]]
    if channels <= 2:
        return np.repeat(pixels[:, :, :1], 3, axis=2)
    return np.ascontiguousarray(pixels[:, :, :3])


def _png(data: bytes) -> np.ndarray:
    pos, idat, palette, header = 8, [], None, None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"PLTE":
            palette = np.frombuffer(body, np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    if depth != 8 or interlace:
        raise ValueError(f"PNG bit depth {depth} / interlace {interlace} (only 8-bit, "
                         "non-interlaced images)")
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    stride = width * channels
    rows = raw[:height * (stride + 1)].reshape(height, stride + 1)
    out = np.zeros((height, stride), np.int32)
    for y in range(height):
        out[y] = _unfilter(rows[y, 0], rows[y, 1:].astype(np.int32),
                           out[y - 1] if y else np.zeros(stride, np.int32), channels)
    pixels = out.astype(np.uint8).reshape(height, width, channels)
    return _rgb(pixels, channels, palette if color == 3 else None)


def _unfilter(kind: int, line, prior, bpp: int):
    if kind == 0:
        return line
    if kind == 2:
        return (line + prior) & 255
    out = line.copy()
    for x in range(len(line)):  # Sub, Average and Paeth read the reconstructed left byte
        left = out[x - bpp] if x >= bpp else 0
        up, corner = prior[x], prior[x - bpp] if x >= bpp else 0
        if kind == 1:
            pred = left
        elif kind == 3:
            pred = (left + up) >> 1
        else:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
        out[x] = (line[x] + pred) & 255
    return out


def _bmp(data: bytes) -> np.ndarray:
    offset = struct.unpack("<I", data[10:14])[0]
    width, height, _, bits, compression = struct.unpack("<iiHHI", data[18:34])
    if bits not in (24, 32) or compression not in (0, 3):
        raise ValueError(f"BMP with {bits} bits per pixel, compression {compression}")
    channels = bits // 8
    stride = (width * channels + 3) & ~3
    rows = np.frombuffer(data, np.uint8, abs(height) * stride, offset)
    pixels = rows.reshape(abs(height), stride)[:, :width * channels].reshape(
        abs(height), width, channels)
    if height > 0:  # bottom-up
        pixels = pixels[::-1]
    return np.ascontiguousarray(pixels[:, :, 2::-1])  # BGR(A) -> RGB


def _pnm(data: bytes) -> np.ndarray:
    fields, pos = [], 2
    while len(fields) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(int(data[pos:end]))
        pos = end
    width, height, maxval = fields
    if maxval != 255:
        raise ValueError(f"PNM maxval {maxval} (only 255)")
    channels = 3 if data[:2] == b"P6" else 1
    pixels = np.frombuffer(data, np.uint8, width * height * channels, pos + 1)
    return _rgb(pixels.reshape(height, width, channels), channels)


def _tiff(data: bytes) -> np.ndarray:
    order = "<" if data[:2] == b"II" else ">"
    (ifd,) = struct.unpack(order + "I", data[4:8])
    (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
    tags = {}
    for k in range(count):
        tag, kind, n, raw = struct.unpack(order + "HHI4s", data[ifd + 2 + 12 * k:
                                                              ifd + 14 + 12 * k])
        fmt, size = {1: ("B", 1), 3: ("H", 2), 4: ("I", 4)}.get(kind, ("B", 1))
        where = raw if n * size <= 4 else data[struct.unpack(order + "I", raw)[0]:][:n * size]
        tags[tag] = struct.unpack(order + fmt * n, where[:n * size])
    width, height = tags[256][0], tags[257][0]
    bits, compression = tags.get(258, (1,)), tags.get(259, (1,))[0]
    channels = tags.get(277, (1,))[0]
    if compression != 1 or any(b != 8 for b in bits) or tags.get(284, (1,))[0] != 1:
        raise ValueError(f"TIFF compression {compression}, bits {bits} (only uncompressed "
                         "8-bit chunky images)")
    strips = b"".join(data[o:o + c] for o, c in zip(tags[273], tags[279]))
    pixels = np.frombuffer(strips, np.uint8, width * height * channels).reshape(
        height, width, channels)
    return _rgb(pixels, channels)
