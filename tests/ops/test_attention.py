"""Attention (causal, masks, KV cache, GQA, softcap, windows, the qk output modes) and
RotaryEmbedding: compiled results against NumPy written here, and must-fail cases."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.errors import ModelError
from dlc.graph.builder import GraphBuilder


def run(op, inputs, n_out=1, **attrs):
    g = GraphBuilder("t")
    syms, feeds = [], []
    for k, x in enumerate(inputs):
        if x is None:
            syms.append(None)
        else:
            syms.append(g.input(f"in{k}", x.shape, x.dtype))
            feeds.append(x)
    out = g.op(op, *syms, outputs=[f"o{k}" for k in range(n_out)] if n_out > 1 else None,
               **attrs)
    out = out if isinstance(out, tuple) else (out,)
    g.output(*out[:n_out])
    return dlc.compile(g.build()).run(*feeds)


def rand(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=shape).astype(dtype)


def attention(q, k, v, mask=None, past_k=None, past_v=None, nonpad=None, scale=None,
              causal=False, softcap=0.0, left=-1, right=-1):
    """Scaled dot-product attention by the spec, in float64, on 4-D inputs; returns
    (Y, present_k, present_v, raw scores, capped, biased, probabilities)."""
    q, k, v = (t.astype(np.float64) for t in (q, k, v))
    if past_k is not None:
        k = np.concatenate([past_k, k], axis=2)
        v = np.concatenate([past_v, v], axis=2)
    B, Hq, Sq, D = q.shape
    Hkv, T = k.shape[1], k.shape[2]
    scale = scale or 1 / np.sqrt(D)
    kk = np.repeat(k, Hq // Hkv, axis=1)
    vv = np.repeat(v, Hq // Hkv, axis=1)
    raw = q @ np.swapaxes(kk, 2, 3) * scale
    capped = softcap * np.tanh(raw / softcap) if softcap > 0 else raw
    bias = np.zeros((B, Hq, Sq, T))
    if mask is not None:
        m = np.where(mask, 0.0, -np.inf) if mask.dtype == bool else mask.astype(np.float64)
        m = np.concatenate([m, np.full(m.shape[:-1] + (T - m.shape[-1],), -np.inf)], axis=-1)
        bias = bias + m
    past = past_k.shape[2] if past_k is not None else 0
    for b in range(B):
        offset = nonpad[b] - Sq if nonpad is not None else past
        for i in range(Sq):
            for j in range(T):
                p = i + offset
                ok = (not causal or j <= p) and (left < 0 or j >= p - left) and \
                    (right < 0 or j <= p + right) and (nonpad is None or j < nonpad[b])
                if not ok:
                    bias[b, :, i, j] = -np.inf
    logits = capped + bias
    probs = np.zeros_like(logits)
    for idx in np.ndindex(logits.shape[:3]):
        if np.isneginf(bias[idx]).all():
            continue  # a fully masked row gives zeros
        e = np.exp(logits[idx] - logits[idx].max())
        probs[idx] = e / e.sum()
    return probs @ vv, k, v, raw, capped, logits, probs


def to3d(x):
    B, H, S, D = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, S, H * D)


@pytest.mark.parametrize("hq,hkv", [(2, 2), (4, 2), (3, 1)])
@pytest.mark.parametrize("causal", [0, 1])
def test_attention_4d(hq, hkv, causal):
    q, k, v = rand((2, hq, 3, 4), seed=1), rand((2, hkv, 5, 4), seed=2), rand((2, hkv, 5, 6),
                                                                                seed=3)
    y, pk, pv, qk = run("Attention", [q, k, v], n_out=4, is_causal=causal)
    want = attention(q, k, v, causal=bool(causal))
    np.testing.assert_allclose(y, want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(pk, k)
    np.testing.assert_array_equal(pv, v)
    np.testing.assert_allclose(qk, want[3], rtol=1e-5, atol=1e-6)


def test_attention_3d_with_heads_and_scale():
    q, k, v = rand((2, 2, 4, 5), seed=4), rand((2, 1, 6, 5), seed=5), rand((2, 1, 6, 3), seed=6)
    (y,) = run("Attention", [to3d(q), to3d(k), to3d(v)], q_num_heads=2, kv_num_heads=1,
               scale=0.3)
    want = attention(q, k, v, scale=0.3)[0]
    np.testing.assert_allclose(y, to3d(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["bool", "float", "short_bool", "broadcast"])
def test_attention_masks(kind):
    q, k, v = rand((1, 2, 3, 4), seed=7), rand((1, 2, 5, 4), seed=8), rand((1, 2, 5, 4), seed=9)
    rng = np.random.default_rng(10)
    mask = {"bool": rng.random((1, 2, 3, 5)) > 0.3, "float": rand((3, 5), seed=11),
            "short_bool": rng.random((3, 3)) > 0.2, "broadcast": rand((2, 1, 5), seed=12)}[kind]
    mask[..., 0] = True if mask.dtype == bool else mask[..., 0]
    (y,) = run("Attention", [q, k, v, mask])
    np.testing.assert_allclose(y, attention(q, k, v, mask)[0], rtol=1e-5, atol=1e-6)


def test_attention_fully_masked_rows_are_zero():
    q, k, v = rand((1, 1, 3, 4), seed=13), rand((1, 1, 4, 4), seed=14), rand((1, 1, 4, 4),
                                                                               seed=15)
    mask = np.array([[True, True, False, False], [False] * 4, [True] * 4])
    y, _, _, probs = run("Attention", [q, k, v, mask], n_out=4, qk_matmul_output_mode=3)
    assert not np.isnan(y).any()
    np.testing.assert_array_equal(y[0, 0, 1], 0)
    np.testing.assert_array_equal(probs[0, 0, 1], 0)
    np.testing.assert_allclose(y, attention(q, k, v, mask)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("causal", [0, 1])
def test_attention_past_cache(causal):
    q, k, v = rand((1, 2, 2, 4), seed=16), rand((1, 2, 2, 4), seed=17), rand((1, 2, 2, 4),
                                                                               seed=18)
    pk, pv = rand((1, 2, 3, 4), seed=19), rand((1, 2, 3, 4), seed=20)
    y, ok, ov = run("Attention", [q, k, v, None, pk, pv], n_out=3, is_causal=causal)
    want = attention(q, k, v, past_k=pk, past_v=pv, causal=bool(causal))
    np.testing.assert_allclose(y, want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ok, want[1].astype(np.float32))
    np.testing.assert_array_equal(ov, want[2].astype(np.float32))


def test_attention_nonpad_kv_seqlen_causal_and_windows():
    q, k, v = rand((2, 1, 3, 4), seed=21), rand((2, 1, 6, 4), seed=22), rand((2, 1, 6, 4),
                                                                               seed=23)
    nonpad = np.array([5, 2], np.int64)  # batch 1: offset -1, its first row is masked
    (y,) = run("Attention", [q, k, v, None, None, None, nonpad], is_causal=1)
    np.testing.assert_allclose(y, attention(q, k, v, nonpad=nonpad, causal=True)[0],
                               rtol=1e-5, atol=1e-6)
    (y,) = run("Attention", [q, k, v], left_window_size=1, right_window_size=2)
    np.testing.assert_allclose(y, attention(q, k, v, left=1, right=2)[0], rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_attention_softcap_and_qk_output_modes(mode):
    q, k, v = rand((1, 2, 3, 4), seed=24) * 4, rand((1, 2, 3, 4), seed=25), rand((1, 2, 3, 4),
                                                                                  seed=26)
    mask = rand((3, 3), seed=27)
    y, _, _, qk = run("Attention", [q, k, v, mask], n_out=4, softcap=0.7, is_causal=1,
                      qk_matmul_output_mode=mode)
    want = attention(q, k, v, mask, causal=True, softcap=0.7)
    np.testing.assert_allclose(y, want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(qk, want[3 + mode], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype,precision", [("float16", ""), ("float32", "float16"),
                                             ("float64", "")])
def test_attention_dtypes_and_softmax_precision(dtype, precision):
    q, k, v = (rand((1, 2, 4, 8), dtype, seed=s) for s in (28, 29, 30))
    (y,) = run("Attention", [q, k, v], is_causal=1, softmax_precision=precision)
    assert y.dtype == np.dtype(dtype)
    tol = 1e-12 if dtype == "float64" else 3e-3
    np.testing.assert_allclose(y.astype(np.float64), attention(q, k, v, causal=True)[0],
                               rtol=tol, atol=tol)


def test_attention_softmax_precision_converter():
    q = rand((1, 1, 2, 4), seed=31)
    node = helper.make_node("Attention", ["q", "q", "q"], ["y"], softmax_precision=1)
    vi = helper.make_tensor_value_info
    graph = helper.make_graph([node], "g", [vi("q", TensorProto.FLOAT, [1, 1, 2, 4])],
                              [vi("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    (y,) = dlc.compile(model).run(q)
    np.testing.assert_allclose(y, attention(q, q, q)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("inputs,attrs,match", [
    ([(1, 2, 3, 4), (1, 2, 3, 5), (1, 2, 3, 4)], {}, "head sizes"),
    ([(1, 3, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4)], {}, "multiple"),
    ([(1, 3, 8), (1, 3, 8), (1, 3, 8)], {}, "q_num_heads"),
    ([(1, 3, 8), (1, 3, 8), (1, 3, 8)], {"q_num_heads": 3, "kv_num_heads": 2}, "multiples"),
    ([(1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4)], {"q_num_heads": 2}, "4-D"),
    ([(1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4)], {"qk_matmul_output_mode": 4}, "mode"),
    ([(1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4)], {"left_window_size": -2}, "window"),
    ([(1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 5, 4)], {}, "V has shape"),
])
def test_attention_must_fail(inputs, attrs, match):
    with pytest.raises(ModelError, match=match):
        run("Attention", [rand(s) for s in inputs], **attrs)


def test_attention_must_fail_on_cache_and_mask():
    q = rand((1, 2, 3, 4))
    with pytest.raises(ModelError, match="together"):
        run("Attention", [q, q, q, None, rand((1, 2, 1, 4))])
    with pytest.raises(ModelError, match="attn_mask"):
        run("Attention", [q, q, q, rand((3, 4))])


# -- RotaryEmbedding -------------------------------------------------------------------------
def rotary(x4, cos, sin, rot, interleaved):
    """x4: [B, S, H, D]; cos/sin: [B, S, rot/2]. Rotates feature pairs as complex numbers."""
    x = x4.astype(np.float64).copy()
    part = x[..., :rot]
    if interleaved:
        z = part[..., 0::2] + 1j * part[..., 1::2]
    else:
        z = part[..., :rot // 2] + 1j * part[..., rot // 2:]
    z = z * (cos + 1j * sin)[:, :, None, :]
    if interleaved:
        part[..., 0::2], part[..., 1::2] = z.real, z.imag
    else:
        part[..., :rot // 2], part[..., rot // 2:] = z.real, z.imag
    return x


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("rot", [0, 4])
@pytest.mark.parametrize("layout", ["4d", "3d"])
@pytest.mark.parametrize("positions", [True, False])
def test_rotary_embedding(interleaved, rot, layout, positions):
    B, H, S, D = 2, 3, 5, 8
    R = rot or D
    x = rand((B, H, S, D), seed=32)
    if positions:
        pos = np.random.default_rng(33).integers(0, 10, (B, S)).astype(np.int64)
        cos, sin = rand((10, R // 2), seed=34), rand((10, R // 2), seed=35)
        c, s = cos[pos], sin[pos]
    else:
        pos, cos, sin = None, rand((B, S, R // 2), seed=34), rand((B, S, R // 2), seed=35)
        c, s = cos, sin
    want = rotary(x.transpose(0, 2, 1, 3), c, s, R, interleaved)
    if layout == "4d":
        (y,) = run("RotaryEmbedding", [x, cos, sin, pos], interleaved=interleaved,
                   rotary_embedding_dim=rot)
        want = want.transpose(0, 2, 1, 3)
    else:
        (y,) = run("RotaryEmbedding", [to3d(x), cos, sin, pos], interleaved=interleaved,
                   rotary_embedding_dim=rot, num_heads=H)
        want = want.reshape(B, S, H * D)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)


def test_rotary_embedding_float16():
    x = rand((1, 2, 3, 4), "float16", 36)
    cos, sin = rand((1, 3, 2), "float16", 37), rand((1, 3, 2), "float16", 38)
    (y,) = run("RotaryEmbedding", [x, cos, sin])
    assert y.dtype == np.float16
    want = rotary(x.transpose(0, 2, 1, 3), cos.astype(np.float64), sin.astype(np.float64), 4,
                  0).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=3e-3, atol=3e-3)


@pytest.mark.parametrize("x,cos,attrs,match", [
    ((1, 2, 3, 4), (1, 3, 3), {}, "caches"),
    ((1, 3, 8), (1, 3, 2), {}, "num_heads"),
    ((1, 2, 3, 4), (1, 3, 2), {"rotary_embedding_dim": 3}, "even"),
    ((1, 2, 3, 4), (1, 3, 1), {"rotary_embedding_dim": 6}, "at most"),
])
def test_rotary_embedding_must_fail(x, cos, attrs, match):
    with pytest.raises(ModelError, match=match):
        run("RotaryEmbedding", [rand(x), rand(cos), rand(cos)], **attrs)
