"""RNN, GRU, LSTM (dlc/ops/rnn.py) and their ONNX converters, against a plain NumPy
implementation written here (one batch entry at a time). Sequence lengths follow
onnxruntime: the reverse direction reads each entry's reversed first L inputs, Y is 0 past
L, and the final states of an empty sequence are 0."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.graph import GraphBuilder

RNG = np.random.default_rng(0)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


ACTS = {"Tanh": lambda x, a, b: np.tanh(x), "Sigmoid": lambda x, a, b: sigmoid(x),
        "Relu": lambda x, a, b: np.maximum(x, 0),
        "LeakyRelu": lambda x, a, b: np.where(x >= 0, x, a * x),
        "HardSigmoid": lambda x, a, b: np.clip(a * x + b, 0, 1),
        "Softsign": lambda x, a, b: x / (1 + abs(x)),
        "Elu": lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1))}


def cell_rnn(x, h, c, w, r, wb, rb, p, acts, clip, extra):
    return acts[0](clip(x @ w.T + h @ r.T + wb + rb)), None


def cell_gru(x, h, c, w, r, wb, rb, p, acts, clip, extra):
    n = h.size
    wz, wr, wh = np.split(w, 3)
    rz, rr, rh = np.split(r, 3)
    bz, br, bh = np.split(wb, 3)
    cz, cr, ch = np.split(rb, 3)
    z = acts[0](clip(x @ wz.T + h @ rz.T + bz + cz))
    rt = acts[0](clip(x @ wr.T + h @ rr.T + br + cr))
    if extra.get("linear_before_reset"):
        hh = acts[1](clip(x @ wh.T + bh + rt * (h @ rh.T + ch)))
    else:
        hh = acts[1](clip(x @ wh.T + (rt * h) @ rh.T + bh + ch))
    assert hh.size == n
    return (1 - z) * hh + z * h, None


def cell_lstm(x, h, c, w, r, wb, rb, p, acts, clip, extra):
    g = x @ w.T + h @ r.T + wb + rb
    gi, go, gf, gc = np.split(g, 4)
    pi, po, pf = np.split(p, 3)
    i = acts[0](clip(gi + pi * c))
    f = 1 - i if extra.get("input_forget") else acts[0](clip(gf + pf * c))
    c = f * c + i * acts[1](clip(gc))
    o = acts[0](clip(go + po * c))
    return o * acts[2](c), c


CELLS = {"RNN": (cell_rnn, 1, ["Tanh"]), "GRU": (cell_gru, 3, ["Sigmoid", "Tanh"]),
         "LSTM": (cell_lstm, 4, ["Sigmoid", "Tanh", "Tanh"])}


def expect(op, x, w, r, b=None, lens=None, h0=None, c0=None, p=None, direction="forward",
           layout=0, activations=None, alphas=(), betas=(), clip=None, **extra):
    """Y, Y_h (, Y_c) of ``op`` computed batch entry by batch entry, in float64."""
    cell, gates, default = CELLS[op]
    if layout:
        x = x.swapaxes(0, 1)
        h0 = None if h0 is None else h0.swapaxes(0, 1)
        c0 = None if c0 is None else c0.swapaxes(0, 1)
    t_len, batch, _ = x.shape
    dirs, hid = w.shape[0], r.shape[-1]
    names = activations or default * dirs
    funcs = []
    al, be = list(alphas), list(betas)
    for name in names:
        a = al.pop(0) if name in ("LeakyRelu", "HardSigmoid", "Elu") and al else \
            {"LeakyRelu": 0.01, "HardSigmoid": 0.2, "Elu": 1.0}.get(name, 0)
        bb = be.pop(0) if name == "HardSigmoid" and be else 0.5
        funcs.append(lambda v, f=ACTS[name], a=a, bb=bb: f(v, a, bb))
    per = len(default)
    clipf = (lambda v: v) if clip is None else (lambda v: np.clip(v, -clip, clip))
    y = np.zeros((t_len, dirs, batch, hid))
    yh, yc = np.zeros((dirs, batch, hid)), np.zeros((dirs, batch, hid))
    for d in range(dirs):
        bias = np.zeros(2 * gates * hid) if b is None else b[d]
        peep = np.zeros(3 * hid) if p is None else p[d]
        for n in range(batch):
            length = t_len if lens is None else lens[n]
            h = np.zeros(hid) if h0 is None else h0[d, n].astype(np.float64)
            c = np.zeros(hid) if c0 is None else c0[d, n].astype(np.float64)
            steps = range(length - 1, -1, -1) if (direction == "reverse" or d == 1) else \
                range(length)
            for t in steps:
                h, c = cell(x[t, n], h, c, w[d], r[d], bias[:gates * hid], bias[gates * hid:],
                            peep, funcs[d * per:(d + 1) * per], clipf, extra)
                y[t, d, n] = h
            if length:
                yh[d, n] = h
                yc[d, n] = c if c is not None else 0
    outs = [y.transpose(2, 0, 1, 3) if layout else y,
            yh.transpose(1, 0, 2) if layout else yh, yc.transpose(1, 0, 2) if layout else yc]
    return outs[:3 if op == "LSTM" else 2]


def weights(op, dirs, size, hid, dtype="float32", bias=True, peep=False):
    gates = CELLS[op][1]
    w = RNG.uniform(-0.6, 0.6, (dirs, gates * hid, size)).astype(dtype)
    r = RNG.uniform(-0.6, 0.6, (dirs, gates * hid, hid)).astype(dtype)
    b = RNG.uniform(-0.5, 0.5, (dirs, 2 * gates * hid)).astype(dtype) if bias else None
    p = RNG.uniform(-0.5, 0.5, (dirs, 3 * hid)).astype(dtype) if peep else None
    return w, r, b, p


def run(op, inputs, **attrs):
    """Compile ``op`` with the given inputs (None: omitted) and run it."""
    g = GraphBuilder(op.lower())
    syms, feeds = [], []
    for k, a in enumerate(inputs):
        if a is None:
            syms.append(None)
        else:
            syms.append(g.input(f"in{k}", a.shape, a.dtype))
            feeds.append(a)
    outs = g.op(op, *syms, **attrs)
    g.output(*outs)
    return dlc.compile(g.build()).run(*feeds)


def check(op, got, inputs, tol=1e-5, **attrs):
    names = ["x", "w", "r", "b", "lens", "h0", "c0", "p"]
    kwargs = {k: v for k, v in zip(names, inputs) if v is not None}
    want = expect(op, **kwargs, **attrs)
    assert len(got) == len(want)
    for k, (g, e) in enumerate(zip(got, want)):
        assert g.shape == e.shape, (k, g.shape, e.shape)
        np.testing.assert_allclose(g.astype(np.float64), e, rtol=tol, atol=tol,
                                   err_msg=f"output {k}")


@pytest.mark.parametrize("direction", ["forward", "reverse", "bidirectional"])
def test_rnn_directions_with_sequence_lens(direction):
    dirs = 2 if direction == "bidirectional" else 1
    x = RNG.standard_normal((4, 3, 2)).astype(np.float32)
    w, r, b, _ = weights("RNN", dirs, 2, 5)
    lens = np.array([4, 2, 0], np.int32)
    h0 = RNG.standard_normal((dirs, 3, 5)).astype(np.float32)
    inputs = [x, w, r, b, lens, h0]
    check("RNN", run("RNN", inputs, direction=direction), inputs, direction=direction)


def test_rnn_activations_clip_and_layout():
    x = RNG.standard_normal((3, 4, 2)).astype(np.float32) * 3   # layout 1: [batch, seq, in]
    w, r, _, _ = weights("RNN", 2, 2, 3, bias=False)
    attrs = dict(direction="bidirectional", layout=1, activations=["LeakyRelu", "HardSigmoid"],
                 activation_alpha=[0.2, 0.3], activation_beta=[0.4], clip=1.5)
    inputs = [x, w, r]
    got = run("RNN", inputs, **attrs)
    check("RNN", got, inputs, direction="bidirectional", layout=1,
          activations=["LeakyRelu", "HardSigmoid"], alphas=[0.2, 0.3], betas=[0.4], clip=1.5)


@pytest.mark.parametrize("lbr", [0, 1])
def test_gru(lbr):
    x = RNG.standard_normal((3, 2, 4)).astype(np.float32)
    w, r, b, _ = weights("GRU", 2, 4, 3)
    lens = np.array([3, 1], np.int32)
    h0 = RNG.standard_normal((2, 2, 3)).astype(np.float32)
    inputs = [x, w, r, b, lens, h0]
    got = run("GRU", inputs, direction="bidirectional", linear_before_reset=lbr)
    check("GRU", got, inputs, direction="bidirectional", linear_before_reset=lbr)


def test_lstm_peepholes_and_initial_states_reverse():
    x = RNG.standard_normal((3, 2, 3)).astype(np.float32)
    w, r, b, p = weights("LSTM", 1, 3, 4, peep=True)
    h0, c0 = (RNG.standard_normal((1, 2, 4)).astype(np.float32) for _ in range(2))
    inputs = [x, w, r, b, None, h0, c0, p]
    check("LSTM", run("LSTM", inputs, direction="reverse"), inputs, direction="reverse")


def test_lstm_input_forget_clip_activations_layout_and_lens():
    x = RNG.standard_normal((2, 3, 3)).astype(np.float64)   # layout 1
    w, r, b, p = weights("LSTM", 2, 3, 2, dtype="float64", peep=True)
    lens = np.array([2, 3], np.int32)
    acts = ["Sigmoid", "Softsign", "Tanh", "HardSigmoid", "Tanh", "Elu"]
    attrs = dict(direction="bidirectional", layout=1, input_forget=1, clip=0.7)
    inputs = [x, w, r, b, lens, None, None, p]
    got = run("LSTM", inputs, activations=acts, activation_alpha=[0.3, 0.9],
              activation_beta=[0.6], **attrs)
    check("LSTM", got, inputs, tol=1e-12, activations=acts, alphas=[0.3, 0.9], betas=[0.6],
          **attrs)


def test_float16_states_are_kept_in_float32():
    x = RNG.standard_normal((3, 2, 2)).astype(np.float16)
    w, r, b, _ = weights("RNN", 1, 2, 3, dtype="float16")
    got = run("RNN", [x, w, r, b])
    assert got[0].dtype == np.float16
    check("RNN", got, [x, w, r, b], tol=2e-3)


@pytest.mark.parametrize("op, shapes, attrs, message", [
    ("RNN", [(2, 1, 3), (1, 4, 3), (1, 4, 4)], {"hidden_size": 5}, "hidden_size is 5"),
    ("RNN", [(2, 1, 3), (1, 4, 2), (1, 4, 4)], {}, "W has shape"),
    ("RNN", [(2, 1, 3), (1, 4, 3), (1, 4, 4)], {"direction": "both"}, "direction must be"),
    ("RNN", [(2, 1, 3), (1, 4, 3), (1, 4, 4)], {"direction": "bidirectional"}, "W has shape"),
    ("RNN", [(2, 1, 3), (1, 4, 3), (1, 4, 4)], {"layout": 2}, "layout"),
    ("RNN", [(2, 1), (1, 4, 3), (1, 4, 4)], {}, "rank 3"),
    ("GRU", [(2, 1, 3), (1, 6, 3), (1, 6, 2)], {"activations": ["Sigmoid"]}, "2 per direction"),
    ("GRU", [(2, 1, 3), (1, 6, 3), (1, 6, 2)], {"activations": ["Sigmoid", "Cube"]},
     "unknown activation"),
    ("LSTM", [(2, 1, 3), (1, 8, 3), (1, 8, 2)],
     {"activations": ["Sigmoid", "ScaledTanh", "Tanh"]}, "needs a value"),
    ("LSTM", [(2, 1, 3), (1, 8, 3), (1, 8, 2)], {"clip": -1.0}, "clip must be positive"),
])
def test_must_fail(op, shapes, attrs, message):
    g = GraphBuilder("bad")
    syms = [g.input(f"in{k}", s) for k, s in enumerate(shapes)]
    with pytest.raises(dlc.ModelError, match=message):
        g.op(op, *syms, **attrs)


def test_sequence_lens_must_be_int32():
    g = GraphBuilder("bad")
    x, w, r = g.input("x", (2, 1, 3)), g.input("w", (1, 4, 3)), g.input("r", (1, 4, 4))
    with pytest.raises(dlc.ModelError, match="sequence_lens"):
        g.op("RNN", x, w, r, None, g.input("l", (1,), "int64"))


# -- ONNX -------------------------------------------------------------------------------
def onnx_run(op, opset, inputs, outputs, **attrs):
    names = ["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"]
    vis, feeds, node_in = [], [], []
    for name, a in zip(names, inputs):
        if a is None:
            node_in.append("")
            continue
        node_in.append(name)
        et = TensorProto.INT32 if a.dtype == np.int32 else TensorProto.FLOAT
        vis.append(helper.make_tensor_value_info(name, et, a.shape))
        feeds.append(a)
    node = helper.make_node(op, node_in, outputs, **attrs)
    graph = helper.make_graph([node], "g", vis, [
        helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs if o])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return dlc.compile(model).run(*feeds)


def test_onnx_gru_opset1_default_direction_and_optional_outputs():
    x = RNG.standard_normal((2, 1, 3)).astype(np.float32)
    w, r, b, _ = weights("GRU", 1, 3, 2)
    (yh,) = onnx_run("GRU", 1, [x, w, r, b], ["", "Y_h"], hidden_size=2, output_sequence=0)
    np.testing.assert_allclose(yh, expect("GRU", x, w, r, b)[1], rtol=1e-5, atol=1e-6)


def test_onnx_lstm_layout_and_default_rnn_activations():
    x = RNG.standard_normal((2, 3, 2)).astype(np.float32)
    w, r, b, _ = weights("LSTM", 1, 2, 2)
    y, yc = onnx_run("LSTM", 14, [x, w, r, b], ["Y", "", "Y_c"], hidden_size=2, layout=1)
    want = expect("LSTM", x, w, r, b, layout=1)
    np.testing.assert_allclose(y, want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(yc, want[2], rtol=1e-5, atol=1e-6)
    w, r, b, _ = weights("RNN", 1, 2, 2)
    (y,) = onnx_run("RNN", 7, [x.swapaxes(0, 1), w, r, b], ["Y"], hidden_size=2)
    np.testing.assert_allclose(y, expect("RNN", x.swapaxes(0, 1), w, r, b)[0], rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("t_len, size", [(0, 2), (3, 0)])
def test_empty_sequence_and_empty_input(t_len, size):
    x = np.ones((t_len, 2, size), np.float32)
    w, r, b, _ = weights("RNN", 1, size, 3)
    h0 = RNG.standard_normal((1, 2, 3)).astype(np.float32)
    inputs = [x, w, r, b, None, h0]
    check("RNN", run("RNN", inputs), inputs)
