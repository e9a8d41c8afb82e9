"""Signal processing: DFT, STFT, the Hann / Hamming / Blackman windows, MelWeightMatrix.

Complex tensors are real tensors whose last dimension holds (real, imaginary) (size 2);
real signals have a last dimension of size 1. Transforms are direct O(N^2) sums,
accumulated in float64 with twiddle factors from a table of ``N`` angles
``2 pi m / N`` indexed by ``(k * n) mod N``, then rounded once to the output dtype.
"""

from __future__ import annotations

import math

import numpy as np

from dlc import te
from dlc.ops.common import normalize_axis, np_dtype, out_type
from dlc.ops.registry import FLOATS, INTS, OPAQUE, OpDef, check_dtype, register

WINDOW_DTYPES = FLOATS + INTS
_F64 = "float64"


def _scalar(ctx, index: int, what: str) -> int:
    value = np.asarray(ctx.value(index))
    if value.size != 1 or value.ndim > 1:
        raise ctx.error(f"{what} must be a scalar, got shape {list(value.shape)}")
    return int(value.reshape(()))


def _check_signal(ctx, index: int = 0) -> str:
    dtype = check_dtype(ctx, index, FLOATS)
    shape = ctx.type(index).shape
    if len(shape) < 2 or shape[-1] not in (1, 2):
        raise ctx.error(f"the signal has shape {list(shape)}; its last dimension must be 1 "
                        "(real) or 2 (real, imaginary)")
    return dtype


def _twiddles(n: int, name: str):
    """cos and sin of 2 pi m / n for m in [0, n), as float64 stages."""
    def angle(m):
        return te.cast(m, _F64) * (2.0 * math.pi) / float(n)

    cos = te.compute((n,), lambda m: te.cos(angle(m)), name=name + "_cos")
    sin = te.compute((n,), lambda m: te.sin(angle(m)), name=name + "_sin")
    return cos, sin


def _complex_out(re, im, shape, dtype, name):
    """Stack float64 real and imaginary stages into ``[..., 2]`` of ``dtype``."""
    def body(*i):
        j = i[:-1]
        return te.cast(te.if_then_else(i[-1] == 0, re[j], im[j]), dtype)

    return te.compute(shape, body, name=name)


# -- DFT --------------------------------------------------------------------------------
@register
class DFT(OpDef):
    """Discrete Fourier transform along ``axis`` (input 2, default -2) of a real or complex
    signal, zero-padded or truncated to ``dft_length`` (input 1). ``onesided`` with a
    forward transform keeps bins ``0 .. n//2`` (RFFT); with ``inverse`` it reads a one-sided
    spectrum and returns a real signal of length ``n`` (IRFFT). Inverses are scaled by 1/n."""

    name = "DFT"
    pattern = OPAQUE
    attrs = {"inverse": 0, "onesided": 0}
    num_inputs = (1, 3)
    value_inputs = (1, 2)

    def _config(self, ctx):
        _check_signal(ctx)
        shape = ctx.type(0).shape
        rank = len(shape)
        axis = _scalar(ctx, 2, "axis") if ctx.has_input(2) else -2
        if not (-rank <= axis <= -2 or 0 <= axis <= rank - 2):
            raise ctx.error(f"axis={axis} is out of range for a signal of rank {rank}: it must "
                            f"be in [{-rank}, -2] or [0, {rank - 2}] (the last dimension "
                            "holds the complex parts)")
        axis = normalize_axis(ctx, axis, rank)
        inverse, onesided = int(ctx.attrs["inverse"]), int(ctx.attrs["onesided"])
        if inverse not in (0, 1) or onesided not in (0, 1):
            raise ctx.error("inverse and onesided must be 0 or 1")
        irfft = bool(inverse and onesided)
        if ctx.has_input(1):
            n = _scalar(ctx, 1, "dft_length")
        else:
            n = 2 * (shape[axis] - 1) if irfft else shape[axis]
        if n < 1:
            raise ctx.error(f"dft_length must be at least 1, got {n}")
        return axis, n, bool(inverse), bool(onesided)

    def infer(self, ctx):
        shape = list(ctx.type(0).shape)
        axis, n, inverse, onesided = self._config(ctx)
        if onesided and inverse:
            shape[axis], shape[-1] = n, 1
        else:
            shape[axis], shape[-1] = (n // 2 + 1 if onesided else n), 2
        return [out_type(shape, ctx.type(0).dtype)]

    def reference(self, ctx, x, dft_length=None, axis=None):
        axis, n, inverse, onesided = self._config(ctx)
        signal = x[..., 0].astype(np.complex128)
        if x.shape[-1] == 2:
            signal = signal + 1j * x[..., 1]
        if inverse and onesided:
            y = np.fft.irfft(signal, n=n, axis=axis)[..., None]
        else:
            y = np.fft.ifft(signal, n=n, axis=axis) if inverse else \
                np.fft.fft(signal, n=n, axis=axis)
            if onesided:
                y = np.take(y, range(n // 2 + 1), axis=axis)
            y = np.stack([y.real, y.imag], axis=-1)
        return [y.astype(x.dtype)]

    def compute(self, ctx, x, dft_length=None, axis_t=None):
        axis, n, inverse, onesided = self._config(ctx)
        out = ctx.out_types[0]
        name = ctx.name or self.name
        cos, sin = _twiddles(n, name)
        complex_in = x.shape[-1] == 2
        irfft = inverse and onesided
        used = min(x.shape[axis], n // 2 + 1 if irfft else n)
        inner = out.shape[:-1]

        def part(p, j, r):
            idx = list(j) + [p]
            idx[axis] = r
            return te.cast(x[tuple(idx)], _F64)

        def terms(j):
            r = te.reduce_axis(used, "r")
            m = (j[axis] * r) % n
            xr = part(0, j, r)
            xi = part(1, j, r) if complex_in else None
            return r, m, xr, xi

        if irfft:
            def real_sum(*j):
                r, m, xr, xi = terms(j)
                even_nyquist = (r == n // 2) if n % 2 == 0 else te.const(False)
                edge = te.any(r == 0, even_nyquist)
                value = xr * cos[m]
                if xi is not None:
                    value = value - te.if_then_else(edge, te.const(0.0, _F64), xi * sin[m])
                weight = te.if_then_else(edge, te.const(1.0, _F64), te.const(2.0, _F64))
                return te.sum(weight * value, axis=r)

            re = te.compute(inner, real_sum, name=name + "_re")
            return [te.compute(out.shape, lambda *i: te.cast(re[i[:-1]] / float(n), out.dtype),
                               name=name)]

        sign = 1.0 if inverse else -1.0   # y = sum x * e^(sign * 2 pi i k n / N)

        def re_sum(*j):
            r, m, xr, xi = terms(j)
            value = xr * cos[m]
            if xi is not None:
                value = value - sign * xi * sin[m]
            return te.sum(value, axis=r)

        def im_sum(*j):
            r, m, xr, xi = terms(j)
            value = sign * xr * sin[m]
            if xi is not None:
                value = value + xi * cos[m]
            return te.sum(value, axis=r)

        re = te.compute(inner, re_sum, name=name + "_re")
        im = te.compute(inner, im_sum, name=name + "_im")
        if inverse:
            re0, im0 = re, im
            re = te.compute(inner, lambda *j: re0[j] / float(n), name=name + "_re_n")
            im = te.compute(inner, lambda *j: im0[j] / float(n), name=name + "_im_n")
        return [_complex_out(re, im, out.shape, out.dtype, name)]


# -- STFT -------------------------------------------------------------------------------
@register
class STFT(OpDef):
    """Short-time Fourier transform of ``signal[batch, length, 1|2]``: frames of
    ``frame_length`` samples every ``frame_step``, times ``window``, each transformed;
    output ``[batch, frames, bins, 2]`` (bins = frame_length // 2 + 1 when onesided)."""

    name = "STFT"
    pattern = OPAQUE
    attrs = {"onesided": 1}
    num_inputs = (2, 4)
    value_inputs = (1, 3)

    def _config(self, ctx):
        dtype = _check_signal(ctx)
        shape = ctx.type(0).shape
        if len(shape) != 3:
            raise ctx.error(f"the signal must have rank 3 [batch, length, 1|2], got shape "
                            f"{list(shape)}")
        step = _scalar(ctx, 1, "frame_step")
        if step < 1:
            raise ctx.error(f"frame_step must be at least 1, got {step}")
        window = None
        if ctx.has_input(2):
            window = ctx.type(2)
            if window.dtype != dtype or len(window.shape) != 1:
                raise ctx.error(f"the window must be a 1-D {dtype} tensor, got {window}")
        if ctx.has_input(3):
            length = _scalar(ctx, 3, "frame_length")
            if window is not None and window.shape[0] != length:
                raise ctx.error(f"the window has {window.shape[0]} elements but frame_length "
                                f"is {length}")
        else:
            length = window.shape[0] if window is not None else shape[1]
        if not 1 <= length <= shape[1]:
            raise ctx.error(f"frame_length {length} must be in [1, signal length {shape[1]}]")
        onesided = int(ctx.attrs["onesided"])
        if onesided not in (0, 1):
            raise ctx.error(f"onesided must be 0 or 1, got {onesided}")
        frames = (shape[1] - length) // step + 1
        return step, length, frames, bool(onesided)

    def infer(self, ctx):
        step, length, frames, onesided = self._config(ctx)
        bins = length // 2 + 1 if onesided else length
        return [out_type((ctx.type(0).shape[0], frames, bins, 2), ctx.type(0).dtype)]

    def reference(self, ctx, x, frame_step, window=None, frame_length=None):
        step, length, frames, onesided = self._config(ctx)
        signal = x[..., 0].astype(np.complex128)
        if x.shape[-1] == 2:
            signal = signal + 1j * x[..., 1]
        w = np.ones(length) if window is None else window.astype(np.float64)
        starts = np.arange(frames) * step
        framed = signal[:, starts[:, None] + np.arange(length)] * w
        y = np.fft.fft(framed, axis=-1)
        if onesided:
            y = y[..., :length // 2 + 1]
        return [np.stack([y.real, y.imag], axis=-1).astype(x.dtype)]

    def compute(self, ctx, x, frame_step=None, window=None, frame_length=None):
        step, length, frames, onesided = self._config(ctx)
        out = ctx.out_types[0]
        name = ctx.name or self.name
        cos, sin = _twiddles(length, name)
        complex_in = x.shape[-1] == 2

        def terms(b, f, k):
            r = te.reduce_axis(length, "r")
            m = (k * r) % length
            t = f * step + r
            w = te.cast(window[r], _F64) if window is not None else None
            xr = te.cast(x[b, t, 0], _F64)
            xi = te.cast(x[b, t, 1], _F64) if complex_in else None
            if w is not None:
                xr = xr * w
                xi = xi * w if xi is not None else None
            return r, m, xr, xi

        def re_sum(b, f, k):
            r, m, xr, xi = terms(b, f, k)
            value = xr * cos[m]
            if xi is not None:
                value = value + xi * sin[m]
            return te.sum(value, axis=r)

        def im_sum(b, f, k):
            r, m, xr, xi = terms(b, f, k)
            value = 0.0 - xr * sin[m]
            if xi is not None:
                value = value + xi * cos[m]
            return te.sum(value, axis=r)

        inner = out.shape[:-1]
        re = te.compute(inner, re_sum, name=name + "_re")
        im = te.compute(inner, im_sum, name=name + "_im")
        return [_complex_out(re, im, out.shape, out.dtype, name)]


# -- windows ----------------------------------------------------------------------------
class Window(OpDef):
    """``w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N)`` for n in [0, size), with
    N = size (periodic) or size - 1 (symmetric); computed in float64, then converted to
    ``output_datatype``."""

    pattern = OPAQUE
    attrs = {"periodic": 1, "output_datatype": "float32"}
    value_inputs = (0,)
    coefficients = (0.0, 0.0, 0.0)

    def _config(self, ctx):
        check_dtype(ctx, 0, ("int32", "int64"))
        size = _scalar(ctx, 0, "size")
        if size < 0:
            raise ctx.error(f"size must be >= 0, got {size}")
        dtype = ctx.attrs["output_datatype"]
        if dtype not in WINDOW_DTYPES:
            raise ctx.error(f"output_datatype {dtype} is not supported; supported: "
                            f"{', '.join(WINDOW_DTYPES)}")
        periodic = int(ctx.attrs["periodic"])
        if periodic not in (0, 1):
            raise ctx.error(f"periodic must be 0 or 1, got {periodic}")
        return size, dtype, float(size if periodic else size - 1)

    def infer(self, ctx):
        size, dtype, _ = self._config(ctx)
        return [out_type((size,), dtype)]

    def reference(self, ctx, size):
        size, dtype, period = self._config(ctx)
        a0, a1, a2 = self.coefficients
        with np.errstate(all="ignore"):
            angle = np.arange(size, dtype=np.float64) * (2.0 * math.pi) / period
            w = a0 - a1 * np.cos(angle) + a2 * np.cos(2.0 * angle)
        return [_float_to(w, dtype)]

    def compute(self, ctx, size):
        size, dtype, period = self._config(ctx)
        a0, a1, a2 = self.coefficients

        def body(n):
            angle = te.cast(n, _F64) * (2.0 * math.pi) / period
            w = a0 - a1 * te.cos(angle) + a2 * te.cos(2.0 * angle)
            return _te_float_to(w, dtype)

        return [te.compute((size,), body, name=ctx.name or self.name)]


@register
class HannWindow(Window):
    name = "HannWindow"
    coefficients = (0.5, 0.5, 0.0)


@register
class HammingWindow(Window):
    name = "HammingWindow"
    coefficients = (25.0 / 46.0, 21.0 / 46.0, 0.0)


@register
class BlackmanWindow(Window):
    name = "BlackmanWindow"
    coefficients = (0.42, 0.5, 0.08)


def _float_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """float64 -> ``dtype``; integers truncate toward zero (NaN becomes 0)."""
    if dtype in FLOATS:
        return values.astype(np_dtype(dtype))
    return np.where(np.isfinite(values), values, 0).astype(np_dtype(dtype))


def _te_float_to(value, dtype: str):
    if dtype in FLOATS:
        return te.cast(value, dtype)
    finite = te.all(te.isnan(value) == te.const(False), te.isinf(value) == te.const(False))
    return te.cast(te.if_then_else(finite, value, te.const(0.0, _F64)), dtype)


# -- MelWeightMatrix --------------------------------------------------------------------
@register
class MelWeightMatrix(OpDef):
    """Triangular mel filter banks: ``[dft_length // 2 + 1, num_mel_bins]`` weights with
    peaks of 1, for mel(f) = 2595 log10(1 + f / 700) between the edge frequencies."""

    name = "MelWeightMatrix"
    pattern = OPAQUE
    attrs = {"output_datatype": "float32"}
    num_inputs = (5, 5)
    value_inputs = (0, 1, 2, 3, 4)

    def _config(self, ctx):
        for k in range(3):
            check_dtype(ctx, k, ("int32", "int64"))
        check_dtype(ctx, 3, FLOATS)
        check_dtype(ctx, 4, FLOATS)
        bins = _scalar(ctx, 0, "num_mel_bins")
        dft_length = _scalar(ctx, 1, "dft_length")
        rate = _scalar(ctx, 2, "sample_rate")
        if bins < 1 or dft_length < 1 or rate < 1:
            raise ctx.error(f"num_mel_bins ({bins}), dft_length ({dft_length}) and "
                            f"sample_rate ({rate}) must be positive")
        lower, upper = (np.asarray(ctx.value(k)).reshape(()) for k in (3, 4))
        dtype = ctx.attrs["output_datatype"]
        if dtype not in WINDOW_DTYPES:
            raise ctx.error(f"output_datatype {dtype} is not supported")
        edges = mel_band_edges(bins, dft_length, rate, lower, upper)
        spectrum = dft_length // 2 + 1
        if edges.min() < 0 or edges[1:-1].max() >= spectrum or edges[-1] > spectrum:
            raise ctx.error(f"the mel bands span spectrogram bins {edges.min()} .. "
                            f"{edges.max()}, outside [0, {spectrum}): check lower_edge_hertz "
                            f"({lower}) and upper_edge_hertz ({upper}) against sample_rate "
                            f"({rate})")
        return spectrum, bins, edges, dtype

    def infer(self, ctx):
        spectrum, bins, _, dtype = self._config(ctx)
        return [out_type((spectrum, bins), dtype)]

    def reference(self, ctx, *inputs):
        spectrum, bins, edges, dtype = self._config(ctx)
        j = np.arange(spectrum)[:, None].astype(np.float64)
        lo, c, hi = (edges[s:s + bins][None, :].astype(np.float64) for s in range(3))
        with np.errstate(all="ignore"):
            up = np.where(c > lo, (j - lo) / (c - lo), (j == c).astype(np.float64))
            down = (hi - j) / (hi - c)
        w = np.where((hi > c) & (j >= c) & (j < hi), down,
                     np.where((j >= lo) & (j <= c), up, 0.0))
        return [_float_to(w, dtype)]

    def compute(self, ctx, *inputs):
        spectrum, bins, edges, dtype = self._config(ctx)

        def body(j, i):
            lo, c, hi = (te.cast(lookup(i + s, edges), _F64) for s in range(3))
            jf = te.cast(j, _F64)
            up = te.if_then_else(c > lo, (jf - lo) / te.maximum(c - lo, 1.0),
                                 te.if_then_else(jf == c, te.const(1.0, _F64),
                                                 te.const(0.0, _F64)))
            down = (hi - jf) / te.maximum(hi - c, 1.0)
            w = te.if_then_else(te.all(hi > c, jf >= c, jf < hi), down,
                                te.if_then_else(te.all(jf >= lo, jf <= c), up,
                                                te.const(0.0, _F64)))
            return _te_float_to(w, dtype)

        return [te.compute((spectrum, bins), body, name=ctx.name or self.name)]


def mel_band_edges(bins: int, dft_length: int, rate: int, lower, upper) -> np.ndarray:
    """Spectrogram bin of each of the ``bins + 2`` band edges (ONNX's reference formula,
    with its float precision: the log of the edges in their own dtype)."""
    low_mel = 2595 * np.log1p(lower / 700) / np.log(10)
    high_mel = 2595 * np.log1p(upper / 700) / np.log(10)
    step = (high_mel - low_mel) / (bins + 2)
    mel = np.arange(bins + 2) * step + low_mel
    hz = 700 * np.expm1(mel / 2595 * np.log(10))
    return ((dft_length + 1) * hz // rate).astype(np.int64)


def lookup(index, values) -> te.Expr:
    """``values[index]`` for a constant int64 table, as a balanced tree of selects."""
    values = [int(v) for v in values]

    def tree(lo, hi):
        if hi - lo == 1:
            return te.const(values[lo], "int64")
        mid = (lo + hi) // 2
        return te.if_then_else(index < mid, tree(lo, mid), tree(mid, hi))

    return tree(0, len(values))
