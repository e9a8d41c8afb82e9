"""Attention (opset 25 semantics) and RotaryEmbedding.

Attention is written as five computes over ``[batch, q_heads, q_len, total_len]``: the
scaled scores ``S = (Q * sqrt(scale)) @ (K * sqrt(scale))^T`` (with the past key cache
in front of K), the row maximum and the sum of exponentials of the logits
``L = softcap(S) + bias``, the guard "every key of the row is masked", and
``Y = softmax(L) @ V``. The additive ``bias`` is an expression of the position: the
attention mask (bool: 0 / -inf, float: added; padded with -inf past its length), the
causal frontier ``j <= i + offset``, the sliding window and the ``nonpad_kv_seqlen``
padding, where ``offset`` is the past length, ``nonpad_kv_seqlen[b] - q_len``, or 0. A
row whose bias is -inf everywhere gives zeros (not NaN). Half-precision inputs compute in
float32; the probabilities are rounded to the input type before the product with V,
like ONNX's reference and function body. GQA maps query head ``h`` to key/value head
``h // (q_heads / kv_heads)``.
"""

from __future__ import annotations

import numpy as np

from dlc import te
from dlc.ops.common import accumulation_dtype, np_dtype, out_type
from dlc.ops.registry import OPAQUE, OpDef, check_dtype, register
from dlc.te.intrinsics import np_exp_nonpositive

ATTN_DTYPES = ("float16", "bfloat16", "float32", "float64")
QK_MODES = (0, 1, 2, 3)


class AttentionShapes:
    """The sizes of one Attention node (validated)."""

    def __init__(self, ctx):
        a = ctx.attrs
        q, k, v = ctx.type(0), ctx.type(1), ctx.type(2)
        self.rank = q.ndim
        if q.ndim not in (3, 4) or k.ndim != q.ndim or v.ndim != q.ndim:
            raise ctx.error(f"Q, K and V must all be 3-D or all 4-D, got {list(q.shape)}, "
                            f"{list(k.shape)}, {list(v.shape)}")
        if q.ndim == 3:
            hq, hk = int(a["q_num_heads"]), int(a["kv_num_heads"])
            if hq < 1 or hk < 1:
                raise ctx.error("3-D inputs need positive q_num_heads and kv_num_heads")
            if q.shape[2] % hq or k.shape[2] % hk or v.shape[2] % hk:
                raise ctx.error(f"hidden sizes {q.shape[2]}, {k.shape[2]}, {v.shape[2]} are "
                                f"not multiples of the head counts {hq} and {hk}")
            self.B, self.Sq = q.shape[:2]
            self.Skv = k.shape[1]
            self.Hq, self.Hkv = hq, hk
            self.D, self.Dk, self.Dv = q.shape[2] // hq, k.shape[2] // hk, v.shape[2] // hk
            if v.shape[1] != self.Skv:
                raise ctx.error("K and V must have one sequence length")
        else:
            if a["q_num_heads"] or a["kv_num_heads"]:
                raise ctx.error("q_num_heads and kv_num_heads must not be given for 4-D "
                                "inputs")
            self.B, self.Hq, self.Sq, self.D = q.shape
            _, self.Hkv, self.Skv, self.Dk = k.shape
            if v.shape[:3] != (self.B, self.Hkv, self.Skv):
                raise ctx.error(f"V has shape {list(v.shape)}; expected "
                                f"[{self.B}, {self.Hkv}, {self.Skv}, v_head_size]")
            self.Dv = v.shape[3]
        if k.shape[0] != self.B or v.shape[0] != self.B:
            raise ctx.error("Q, K and V must have one batch size")
        if self.Dk != self.D:
            raise ctx.error(f"Q and K have head sizes {self.D} and {self.Dk}")
        if self.Hq % self.Hkv:
            raise ctx.error(f"q_num_heads {self.Hq} is not a multiple of kv_num_heads "
                            f"{self.Hkv}")
        self.past = 0
        if ctx.has_input(4) != ctx.has_input(5):
            raise ctx.error("past_key and past_value must be given together")
        if ctx.has_input(4):
            pk, pv = ctx.type(4), ctx.type(5)
            if pk.ndim != 4 or pk.shape[:2] != (self.B, self.Hkv) or pk.shape[3] != self.D \
                    or pv.shape != (self.B, self.Hkv, pk.shape[2], self.Dv):
                raise ctx.error(f"past_key {list(pk.shape)} / past_value {list(pv.shape)} "
                                "do not match K and V")
            self.past = pk.shape[2]
        self.T = self.past + self.Skv
        self.nonpad = ctx.has_input(6)
        if self.nonpad:
            if self.past:
                raise ctx.error("nonpad_kv_seqlen cannot be combined with past_key")
            if ctx.type(6).shape != (self.B,):
                raise ctx.error(f"nonpad_kv_seqlen must have shape [{self.B}]")
        self.mask = ctx.type(3) if ctx.has_input(3) else None
        if self.mask is not None:
            m = self.mask.shape
            full = (self.B, self.Hq, self.Sq, self.T)
            if len(m) > 4 or len(m) < 1 or m[-1] > self.T or any(
                    s not in (1, f) for s, f in zip(m[-2::-1], full[-2::-1])):
                raise ctx.error(f"attn_mask of shape {list(m)} does not broadcast to "
                                f"{list(full)}")


@register
class Attention(OpDef):
    name = "Attention"
    pattern = OPAQUE
    num_inputs = (3, 7)
    num_outputs = (1, 4)
    attrs = {"is_causal": 0, "kv_num_heads": 0, "q_num_heads": 0, "qk_matmul_output_mode": 0,
             "scale": 0.0, "softcap": 0.0, "softmax_precision": "", "left_window_size": -1,
             "right_window_size": -1}

    def shapes(self, ctx) -> AttentionShapes:
        a = ctx.attrs
        if a["qk_matmul_output_mode"] not in QK_MODES:
            raise ctx.error(f"qk_matmul_output_mode must be 0..3, got "
                            f"{a['qk_matmul_output_mode']}")
        if a["left_window_size"] < -1 or a["right_window_size"] < -1:
            raise ctx.error("left_window_size and right_window_size must be -1 or >= 0")
        if a["softmax_precision"] not in ("",) + ATTN_DTYPES:
            raise ctx.error(f"softmax_precision {a['softmax_precision']!r} is not one of "
                            f"{', '.join(ATTN_DTYPES)}")
        return AttentionShapes(ctx)

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, ATTN_DTYPES)
        check_dtype(ctx, 2, ATTN_DTYPES, "V")
        if ctx.type(1).dtype != dtype:
            raise ctx.error("Q and K must have one dtype")
        for k in (4, 5):
            if ctx.has_input(k) and ctx.type(k).dtype != ctx.type(1 if k == 4 else 2).dtype:
                raise ctx.error(f"input {k} must have the dtype of {'K' if k == 4 else 'V'}")
        if ctx.has_input(6):
            check_dtype(ctx, 6, ("int64",), "nonpad_kv_seqlen")
        sh = self.shapes(ctx)
        vd = ctx.type(2).dtype
        y = (sh.B, sh.Sq, sh.Hq * sh.Dv) if sh.rank == 3 else (sh.B, sh.Hq, sh.Sq, sh.Dv)
        return [out_type(y, dtype), out_type((sh.B, sh.Hkv, sh.T, sh.D), dtype),
                out_type((sh.B, sh.Hkv, sh.T, sh.Dv), vd),
                out_type((sh.B, sh.Hq, sh.Sq, sh.T), dtype)]

    def scale(self, ctx, sh) -> float:
        s = float(ctx.attrs["scale"]) or 1.0 / np.sqrt(sh.D)
        return float(np.sqrt(s))

    # -- NumPy reference -------------------------------------------------------------------
    def reference(self, ctx, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None):
        sh = self.shapes(ctx)
        a = ctx.attrs
        dt = q.dtype
        if sh.rank == 3:
            q = q.reshape(sh.B, sh.Sq, sh.Hq, sh.D).transpose(0, 2, 1, 3)
            k = k.reshape(sh.B, sh.Skv, sh.Hkv, sh.D).transpose(0, 2, 1, 3)
            v = v.reshape(sh.B, sh.Skv, sh.Hkv, sh.Dv).transpose(0, 2, 1, 3)
        pk = np.concatenate([past_k, k], axis=2) if past_k is not None else k
        pv = np.concatenate([past_v, v], axis=2) if past_v is not None else v
        acc = np.float64 if dt == np.float64 else np.float32
        s = dt.type(self.scale(ctx, sh))
        rep = sh.Hq // sh.Hkv
        kk = np.repeat(pk, rep, axis=1)
        vv = np.repeat(pv, rep, axis=1)
        scores = np.matmul((q * s).astype(acc), np.swapaxes((kk * s).astype(acc), 2, 3))
        raw = scores
        if a["softcap"] > 0:
            scores = a["softcap"] * np.tanh(scores / a["softcap"])
        bias = self.np_bias(ctx, sh, mask, nonpad, acc)
        logits = scores + bias
        if a["softmax_precision"]:
            logits = logits.astype(np_dtype(a["softmax_precision"])).astype(acc)
        mx = np.max(logits, axis=-1, keepdims=True)
        e = np_exp_nonpositive(logits - np.where(np.isneginf(mx), 0, mx))
        total = np.sum(e, axis=-1, keepdims=True)
        probs = e / np.where(total == 0, 1, total)
        masked = np.isneginf(np.max(np.broadcast_to(bias, logits.shape), axis=-1,
                                    keepdims=True))
        probs = np.where(masked, 0, probs)
        if a["softmax_precision"]:
            probs = probs.astype(np_dtype(a["softmax_precision"]))
        probs = probs.astype(dt)
        y = np.matmul(probs.astype(acc), vv.astype(acc)).astype(v.dtype)
        if sh.rank == 3:
            y = y.transpose(0, 2, 1, 3).reshape(sh.B, sh.Sq, sh.Hq * sh.Dv)
        mode = a["qk_matmul_output_mode"]
        qk = [raw, scores, logits if not a["softmax_precision"] else scores + bias, probs][mode]
        return [y.astype(dt), pk, pv, np.broadcast_to(qk, (sh.B, sh.Hq, sh.Sq, sh.T))
                .astype(dt)]

    def np_bias(self, ctx, sh, mask, nonpad, acc):
        a = ctx.attrs
        i = np.arange(sh.Sq).reshape(-1, 1)
        j = np.arange(sh.T).reshape(1, -1)
        bias = np.zeros((1, 1, sh.Sq, sh.T), acc)
        if mask is not None:
            pad = sh.T - mask.shape[-1]
            if mask.dtype == np.bool_:
                m = np.where(mask, 0, -np.inf).astype(acc)
            else:
                m = mask.astype(acc)
            m = np.pad(m, [(0, 0)] * (m.ndim - 1) + [(0, pad)], constant_values=-np.inf)
            bias = bias + m
        offset = np.full((sh.B, 1, 1, 1), sh.past)
        if sh.nonpad:
            offset = (nonpad.astype(np.int64) - sh.Sq).reshape(-1, 1, 1, 1)
        diff = i + offset - j
        allowed = np.ones(diff.shape, bool)
        if a["is_causal"]:
            allowed &= diff >= 0
        if a["left_window_size"] >= 0:
            allowed &= diff <= a["left_window_size"]
        if a["right_window_size"] >= 0:
            allowed &= -diff <= a["right_window_size"]
        if sh.nonpad:
            allowed &= j < nonpad.reshape(-1, 1, 1, 1)
        return bias + np.where(allowed, 0, -np.inf).astype(acc)

    # -- tensor expressions ----------------------------------------------------------------
    def compute(self, ctx, q, k, v, mask=None, past_k=None, past_v=None, nonpad=None):
        sh = self.shapes(ctx)
        a = ctx.attrs
        dt = q.dtype
        acc = accumulation_dtype(dt)
        name = ctx.name or self.name
        s = te.const(self.scale(ctx, sh), dt)
        rep = sh.Hq // sh.Hkv

        def read_q(b, h, i, d):
            return q[b, h, i, d] if sh.rank == 4 else q[b, i, h * sh.D + d]

        def read_kv(x, past, dim, b, h, t, d):
            """The present cache (past, then the new keys/values) at kv head ``h``."""
            def new(tt):
                return x[b, h, tt, d] if sh.rank == 4 else x[b, tt, h * dim + d]
            if past is None:
                return new(t)
            return te.if_then_else(t < sh.past, past[b, h, te.minimum(t, sh.past - 1), d],
                                   new(te.maximum(t - sh.past, 0)))

        present_k = te.compute((sh.B, sh.Hkv, sh.T, sh.D), lambda b, h, t, d: read_kv(
            k, past_k, sh.D, b, h, t, d), name=f"{name}_present_key")
        present_v = te.compute((sh.B, sh.Hkv, sh.T, sh.Dv), lambda b, h, t, d: read_kv(
            v, past_v, sh.Dv, b, h, t, d), name=f"{name}_present_value")
        rd = te.reduce_axis(sh.D, "d")
        scores = te.compute((sh.B, sh.Hq, sh.Sq, sh.T), lambda b, h, i, j: te.sum(
            te.cast(read_q(b, h, i, rd) * s, acc)
            * te.cast(read_kv(k, past_k, sh.D, b, h // rep, j, rd) * s, acc), axis=rd),
            name=f"{name}_scores")

        sdt = a["softmax_precision"] or dt

        def rounded(x, to):
            """``x`` rounded to ``to`` where the reference computes in that (narrower)
            type: half-precision results match it to the last bit more often."""
            return te.cast(te.cast(x, to), acc) if to != acc else x

        def capped(idx):
            x = rounded(scores[idx], dt)
            if a["softcap"] > 0:
                c = te.const(float(a["softcap"]), acc)
                x = rounded(c * te.tanh(x / c), dt)
            return x

        def with_bias(idx):
            return rounded(capped(idx) + self.te_bias(ctx, sh, mask, nonpad, acc, idx), dt)

        def logits(idx):
            return rounded(with_bias(idx), sdt)

        shape = (sh.B, sh.Hq, sh.Sq, sh.T)
        rj = te.reduce_axis(sh.T, "j")
        mx = te.compute(shape[:3], lambda b, h, i: te.max(logits((b, h, i, rj)), axis=rj),
                        name=f"{name}_max")
        neg_inf = te.const(-np.inf, acc)

        def exp_shifted(b, h, i, j):
            m = mx[b, h, i]
            m = te.if_then_else(m == neg_inf, te.const(0.0, acc), m)
            return rounded(te.exp_nonpositive(rounded(logits((b, h, i, j)) - m, sdt)), sdt)

        rj2 = te.reduce_axis(sh.T, "j")
        total = te.compute(shape[:3], lambda b, h, i: te.sum(exp_shifted(b, h, i, rj2),
                                                             axis=rj2), name=f"{name}_sum")
        rj3 = te.reduce_axis(sh.T, "j")
        bias_max = te.compute(shape[:3], lambda b, h, i: te.max(
            self.te_bias(ctx, sh, mask, nonpad, acc, (b, h, i, rj3)), axis=rj3),
            name=f"{name}_bias_max")

        def prob(b, h, i, j):
            z = rounded(total[b, h, i], sdt)
            p = rounded(exp_shifted(b, h, i, j) / te.if_then_else(
                z == 0.0, te.const(1.0, acc), z), sdt)
            p = te.if_then_else(bias_max[b, h, i] == neg_inf, te.const(0.0, acc), p)
            return te.cast(p, dt)  # the probabilities in T1, as the spec's function body

        rt = te.reduce_axis(sh.T, "t")
        vacc = accumulation_dtype(v.dtype)
        heads = te.compute((sh.B, sh.Hq, sh.Sq, sh.Dv), lambda b, h, i, d: te.sum(
            te.cast(prob(b, h, i, rt), vacc) * te.cast(
                read_kv(v, past_v, sh.Dv, b, h // rep, rt, d), vacc), axis=rt),
            name=f"{name}_heads")
        if sh.rank == 3:
            y = te.compute((sh.B, sh.Sq, sh.Hq * sh.Dv), lambda b, i, c: te.cast(
                heads[b, c // sh.Dv, i, c % sh.Dv], dt), name=name)
        else:
            y = te.compute(heads.shape, lambda *i: te.cast(heads[i], dt), name=name)
        mode = a["qk_matmul_output_mode"]
        qk_fns = [lambda idx: scores[idx], capped, with_bias, lambda idx: prob(*idx)]
        qk = te.compute(shape, lambda *idx: te.cast(qk_fns[mode](idx), dt),
                        name=f"{name}_qk")
        return [y, present_k, present_v, qk]

    def te_bias(self, ctx, sh, mask, nonpad, acc, idx):
        """The additive bias at ``idx = (b, h, i, j)`` (0 or -inf, plus a float mask)."""
        a = ctx.attrs
        b, h, i, j = idx
        zero, neg_inf = te.const(0.0, acc), te.const(-np.inf, acc)
        bias = None
        if mask is not None:
            m_shape = mask.shape
            full = (b, h, i, j)[4 - len(m_shape):]
            mi = [0 if s == 1 and d < len(m_shape) - 1 else full[d]
                  for d, s in enumerate(m_shape)]
            width = m_shape[-1]
            mi[-1] = te.minimum(j, width - 1) if width < sh.T else j
            raw = mask[tuple(mi)]
            if mask.dtype == "bool":
                val = te.if_then_else(raw, zero, neg_inf)
            else:
                val = te.cast(raw, acc)
            bias = te.if_then_else(j < width, val, neg_inf) if width < sh.T else val
        conds = []
        if sh.nonpad:
            offset = nonpad[b] - sh.Sq
        else:
            offset = sh.past
        diff = i + offset - j
        if a["is_causal"]:
            conds.append(diff >= 0)
        if a["left_window_size"] >= 0:
            conds.append(diff <= a["left_window_size"])
        if a["right_window_size"] >= 0:
            conds.append(-diff <= a["right_window_size"])
        if sh.nonpad:
            conds.append(j < nonpad[b])
        if conds:
            allowed = te.if_then_else(te.all(*conds), zero, neg_inf)
            bias = allowed if bias is None else bias + allowed
        return bias if bias is not None else zero


# -- RotaryEmbedding -------------------------------------------------------------------------
@register
class RotaryEmbedding(OpDef):
    """Rotates the first ``rotary_embedding_dim`` features of each head by the position's
    angles: pairs are the two halves (or, ``interleaved``, adjacent features);
    ``real = cos * x1 - sin * x2``, ``imag = sin * x1 + cos * x2``. The caches are
    indexed by ``position_ids`` when given, else by (batch, position)."""

    name = "RotaryEmbedding"
    pattern = OPAQUE
    num_inputs = (3, 4)
    attrs = {"interleaved": 0, "num_heads": 0, "rotary_embedding_dim": 0}

    def dims(self, ctx):
        x = ctx.type(0)
        if x.ndim == 4:
            B, H, S, D = x.shape
        elif x.ndim == 3:
            H = int(ctx.attrs["num_heads"])
            if H < 1 or x.shape[2] % H:
                raise ctx.error(f"3-D input needs num_heads dividing {x.shape[2]}")
            B, S = x.shape[:2]
            D = x.shape[2] // H
        else:
            raise ctx.error(f"input must be 3-D or 4-D, got shape {list(x.shape)}")
        R = int(ctx.attrs["rotary_embedding_dim"]) or D
        if R % 2 or R > D:
            raise ctx.error(f"rotary_embedding_dim {R} must be even and at most the head "
                            f"size {D}")
        cos, sin = ctx.type(1), ctx.type(2)
        if ctx.has_input(3):
            if ctx.type(3).shape != (B, S):
                raise ctx.error(f"position_ids must have shape [{B}, {S}]")
            want = cos.ndim == 2
        else:
            want = cos.shape[:2] == (B, S) and cos.ndim == 3
        if not want or cos.shape != sin.shape or cos.shape[-1] != R // 2:
            raise ctx.error(f"cos/sin caches of shapes {list(cos.shape)}, {list(sin.shape)} "
                            f"do not fit (last dimension must be {R // 2})")
        return B, H, S, D, R

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, ("float32", "float16", "bfloat16"))
        for k in (1, 2):
            if ctx.type(k).dtype != dtype:
                raise ctx.error("the caches must have the input's dtype")
        if ctx.has_input(3):
            check_dtype(ctx, 3, ("int64",), "position_ids")
        self.dims(ctx)
        return [ctx.type(0)]

    def reference(self, ctx, x, cos, sin, pos=None):
        B, H, S, D, R = self.dims(ctx)
        x4 = x.reshape(B, S, H, D) if x.ndim == 3 else x.transpose(0, 2, 1, 3)
        if pos is not None:
            cos, sin = cos[pos], sin[pos]
        c, s = cos[:, :, None, :], sin[:, :, None, :]
        rot = x4[..., :R]
        if ctx.attrs["interleaved"]:
            x1, x2 = rot[..., 0::2], rot[..., 1::2]
        else:
            x1, x2 = rot[..., :R // 2], rot[..., R // 2:]
        real, imag = c * x1 - s * x2, s * x1 + c * x2
        if ctx.attrs["interleaved"]:
            rot = np.stack([real, imag], axis=-1).reshape(rot.shape)
        else:
            rot = np.concatenate([real, imag], axis=-1)
        out = np.concatenate([rot, x4[..., R:]], axis=-1).astype(x.dtype)
        return [out.reshape(x.shape) if x.ndim == 3 else out.transpose(0, 2, 1, 3)]

    def compute(self, ctx, x, cos, sin, pos=None):
        B, H, S, D, R = self.dims(ctx)
        half = R // 2
        inter = bool(ctx.attrs["interleaved"])

        def read(b, h, p, d):
            return x[b, h, p, d] if x.ndim == 4 else x[b, p, h * D + d]

        def cache(c, b, p, f):
            if pos is None:
                return c[b, p, f]
            row = te.minimum(te.maximum(pos[b, p], 0), c.shape[0] - 1)
            return c[row, f]

        def body(b, h, p, d):
            f = d // 2 if inter else d % half          # the frequency of feature d
            first = d % 2 == 0 if inter else d < half  # real (x1) or imaginary (x2) part
            i1 = d - (d % 2) if inter else f
            i2 = i1 + 1 if inter else f + half
            f_safe = te.minimum(f, half - 1)  # d >= R reads no cache (guarded below)
            x1, x2 = read(b, h, p, te.minimum(i1, R - 1)), read(b, h, p, te.minimum(i2, R - 1))
            c, s = cache(cos, b, p, f_safe), cache(sin, b, p, f_safe)
            rotated = te.if_then_else(first, c * x1 - s * x2, s * x1 + c * x2)
            return te.if_then_else(d < R, rotated, read(b, h, p, d))

        out4 = (B, H, S, D)
        if x.ndim == 4:
            return [te.compute(out4, body, name=ctx.name or self.name)]
        return [te.compute(x.shape, lambda b, p, c: body(b, c // D, p, c % D),
                           name=ctx.name or self.name)]
