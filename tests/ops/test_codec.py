"""ImageDecoder (dlc/ops/codec.py): images encoded here (PNG with every filter type, BMP,
PNM, TIFF) decode to their pixels in RGB, BGR and Grayscale; unsupported codecs and
malformed streams fail clearly."""

import struct
import zlib

import numpy as np
import pytest

import dlc
from dlc.errors import ModelError, UnsupportedOpError
from dlc.graph import GraphBuilder

RNG = np.random.default_rng(0)
IMAGE = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)  # odd width: BMP row padding


def decode(data: bytes, pixel_format="RGB"):
    stream = np.frombuffer(data, np.uint8)
    g = GraphBuilder("decode")
    g.output(g.op("ImageDecoder", g.input("s", stream.shape, "uint8"),
                  pixel_format=pixel_format))
    return dlc.compile(g.build()).run(stream)[0]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(
        ">I", zlib.crc32(kind + body))


def png(pixels, color=2, palette=None) -> bytes:
    """Each row uses another filter type (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    h, w = pixels.shape[:2]
    flat = pixels.reshape(h, -1).astype(np.int32)
    bpp = pixels.shape[2] if pixels.ndim == 3 else 1
    raw = b""
    for y in range(h):
        kind, line = y % 5, flat[y]
        prior = flat[y - 1] if y else np.zeros_like(line)
        left = np.concatenate([np.zeros(bpp, np.int32), line[:-bpp]])
        corner = np.concatenate([np.zeros(bpp, np.int32), prior[:-bpp]])
        p = left + prior - corner
        pa, pb, pc = abs(p - left), abs(p - prior), abs(p - corner)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, corner))
        pred = [0, left, prior, (left + prior) >> 1, paeth][kind]
        raw += bytes([kind]) + ((line - pred) & 255).astype(np.uint8).tobytes()
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0,
                                                              0, 0))
    if palette is not None:
        out += _chunk(b"PLTE", palette.tobytes())
    return out + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def bmp(pixels) -> bytes:
    h, w = pixels.shape[:2]
    stride = (w * 3 + 3) & ~3
    rows = b"".join(pixels[y, :, ::-1].tobytes().ljust(stride, b"\0")
                    for y in range(h - 1, -1, -1))
    header = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(rows), 0, 0, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(header) + len(rows), 0, 0, 54) + header + rows


def tiff(pixels) -> bytes:
    h, w = pixels.shape[:2]
    data = pixels.tobytes()
    entries = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, 3, 8 + 12 * 9 + 6), (259, 3, 1, 1),
               (262, 3, 1, 2), (273, 4, 1, 8 + 12 * 9 + 6 + 6), (277, 3, 1, 3),
               (279, 4, 1, len(data)), (284, 3, 1, 1)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", t, k, n) + (struct.pack("<I", v) if k == 4 or t == 258
                                        else struct.pack("<HH", v, 0))
        for t, k, n, v in entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<HHH", 8, 8, 8) + data


@pytest.mark.parametrize("encode", [png, bmp, tiff,
                                    lambda p: b"P6\n# a comment\n7 5\n255\n" + p.tobytes()])
def test_lossless_formats_decode_exactly(encode):
    np.testing.assert_array_equal(decode(encode(IMAGE)), IMAGE)


def test_png_gray_alpha_and_palette_become_rgb():
    gray = IMAGE[:, :, :1]
    np.testing.assert_array_equal(decode(png(gray, color=0)), np.repeat(gray, 3, 2))
    rgba = np.concatenate([IMAGE, gray], axis=2)
    np.testing.assert_array_equal(decode(png(rgba, color=6)), IMAGE)
    palette = RNG.integers(0, 256, size=(4, 3), dtype=np.uint8)
    index = RNG.integers(0, 4, size=(5, 7, 1), dtype=np.uint8)
    np.testing.assert_array_equal(decode(png(index, color=3, palette=palette)),
                                  palette[index[:, :, 0]])


def test_bgr_and_grayscale():
    data = png(IMAGE)
    np.testing.assert_array_equal(decode(data, "BGR"), IMAGE[:, :, ::-1])
    luma = (IMAGE.astype(np.int64) @ [19595, 38470, 7471] + 0x8000) >> 16  # PIL's "L"
    np.testing.assert_array_equal(decode(data, "Grayscale"), luma[:, :, None])


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "JPEG2000"])
def test_lossy_formats_through_pillow(fmt):
    import io

    from PIL import Image

    y, x = np.mgrid[0:24, 0:32]
    smooth = np.stack([x * 8, y * 10, (x + y) * 4], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(smooth).save(buf, format=fmt, **({"quality": 95} if fmt != "JPEG2000"
                                                     else {}))
    got = decode(buf.getvalue())
    assert got.shape == smooth.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - smooth).max() <= 12  # lossy, but the same picture


def test_lossy_formats_without_pillow_are_unsupported(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL fails
    with pytest.raises(UnsupportedOpError, match="JPEG images need Pillow"):
        decode(b"\xff\xd8\xff\xe0" + bytes(20))


@pytest.mark.parametrize("data, error, message", [
    (b"\xff\xd8\xff\xe0" + bytes(20), ModelError, "malformed.*JPEG"),
    (b"RIFF\0\0\0\0WEBPVP8 " + bytes(8), ModelError, "malformed.*WebP"),
    (b"GIF89a" + bytes(10), ModelError, "not a PNG"),
    (png(IMAGE)[:40], ModelError, "malformed"),
])
def test_unsupported_and_malformed_streams(data, error, message):
    with pytest.raises(error, match=message):
        decode(data)


def test_pixel_format_must_be_known():
    g = GraphBuilder("bad")
    with pytest.raises(ModelError, match="pixel_format"):
        g.op("ImageDecoder", g.constant(np.frombuffer(png(IMAGE), np.uint8)),
             pixel_format="CMYK")
