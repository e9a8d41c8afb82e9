"""Recurrent operators: RNN, GRU, LSTM (ONNX semantics, newest version).

The sequence is unrolled at compile time: one kernel whose stages are, per direction, the
input projection of every time step (one reduction), then per step the recurrent
projection (a reduction over the previous hidden state) and the new state (elementwise).
Outputs pick their step with a balanced tree of selects.

``sequence_lens`` (as onnxruntime): batch entry b runs ``L_b = sequence_lens[b]`` steps,
the reverse direction over its reversed first ``L_b`` inputs; ``Y`` is 0 from ``L_b`` on
and ``Y_h`` / ``Y_c`` are the last state (0 when ``L_b == 0``). Lengths outside
``[0, seq_length]`` are clamped (onnxruntime rejects them). States are kept in float32
(float64 for float64 models) and outputs rounded to the model dtype. ``clip`` bounds the
inputs of the gate activations (not of LSTM's ``h(C)``, as in onnxruntime).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlc import te
from dlc.ops.common import np_dtype, out_type
from dlc.ops.registry import FLOATS, OPAQUE, OpDef, check_dtype, register

#: activation -> (default alpha, default beta); None: the parameter is not used; "req":
#: used, with no default (the spec's defaults are those of the ONNX operators).
ACTIVATIONS = {
    "relu": (None, None), "tanh": (None, None), "sigmoid": (None, None),
    "affine": (1.0, 0.0), "leakyrelu": (0.01, None), "thresholdedrelu": (1.0, None),
    "scaledtanh": ("req", "req"), "hardsigmoid": (0.2, 0.5), "elu": (1.0, None),
    "softsign": (None, None), "softplus": (None, None),
}


@dataclass
class Config:
    seq: int
    batch: int
    hidden: int
    dirs: int
    reverse: tuple          # per direction
    acts: list              # per direction: [(name, alpha, beta), ...]
    clip: float | None
    layout: int
    acc: str                # dtype of the arithmetic and the states
    linear_before_reset: int = 0
    input_forget: int = 0


def te_activation(name, alpha, beta):
    """The activation ``name`` as a function of a tensor expression."""
    return {
        "relu": lambda x: te.maximum(x, 0.0),
        "tanh": te.tanh,
        "sigmoid": te.sigmoid,
        "affine": lambda x: alpha * x + beta,
        "leakyrelu": lambda x: te.if_then_else(x >= 0.0, x, alpha * x),
        "thresholdedrelu": lambda x: te.if_then_else(x >= alpha, x, x * 0.0),
        "scaledtanh": lambda x: alpha * te.tanh(beta * x),
        "hardsigmoid": lambda x: te.minimum(te.maximum(alpha * x + beta, 0.0), 1.0),
        "elu": lambda x: te.if_then_else(x >= 0.0, x, alpha * te.expm1(x)),
        "softsign": lambda x: x / (1.0 + te.abs(x)),
        "softplus": lambda x: te.maximum(x, 0.0) + te.log1p(te.exp(0.0 - te.abs(x))),
    }[name]


def np_activation(name, alpha, beta):
    """The activation ``name`` on NumPy arrays."""
    return {
        "relu": lambda x: np.maximum(x, 0),
        "tanh": np.tanh,
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "affine": lambda x: alpha * x + beta,
        "leakyrelu": lambda x: np.where(x >= 0, x, alpha * x),
        "thresholdedrelu": lambda x: np.where(x >= alpha, x, 0),
        "scaledtanh": lambda x: alpha * np.tanh(beta * x),
        "hardsigmoid": lambda x: np.clip(alpha * x + beta, 0, 1),
        "elu": lambda x: np.where(x >= 0, x, alpha * np.expm1(x)),
        "softsign": lambda x: x / (1 + np.abs(x)),
        "softplus": lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))),
    }[name]


def parse_activations(ctx, defaults: tuple, dirs: int) -> list:
    """Per direction, the list of (name, alpha, beta) for the op's activation slots."""
    names = ctx.attrs["activations"]
    per_dir = len(defaults)
    if not names:
        names = list(defaults) * dirs
    elif len(names) == 2 * per_dir and dirs == 1:
        names = names[:per_dir]  # the spec's default lists are written for two directions
    if len(names) != per_dir * dirs:
        raise ctx.error(f"activations lists {len(names)} functions; {per_dir} per direction "
                        f"({per_dir * dirs} in all) are needed")
    alphas = list(ctx.attrs["activation_alpha"] or [])
    betas = list(ctx.attrs["activation_beta"] or [])
    parsed = []
    for raw in names:
        name = str(raw).lower()
        if name not in ACTIVATIONS:
            raise ctx.error(f"unknown activation {raw!r}; known: Relu, Tanh, Sigmoid, Affine, "
                            "LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, "
                            "Softsign, Softplus")
        params = []
        for default, values, what in zip(ACTIVATIONS[name], (alphas, betas),
                                         ("activation_alpha", "activation_beta")):
            if default is None:
                params.append(0.0)
            elif values:
                params.append(float(values.pop(0)))
            elif default == "req":
                raise ctx.error(f"activation {raw} needs a value in {what}")
            else:
                params.append(default)
        parsed.append((name, params[0], params[1]))
    return [parsed[d * per_dir:(d + 1) * per_dir] for d in range(dirs)]


class Recurrent(OpDef):
    """Shared checks, layouts, unrolling and outputs of RNN, GRU and LSTM."""

    pattern = OPAQUE
    attrs = {"activation_alpha": [], "activation_beta": [], "activations": [], "clip": None,
             "direction": "forward", "hidden_size": None, "layout": 0}
    gates = 1                    # row blocks of W and R
    default_activations = ("Tanh",)
    state_inputs = (5,)          # initial_h (and initial_c)

    # -- type checks ------------------------------------------------------------------
    def config(self, ctx) -> Config:
        dtype = check_dtype(ctx, 0, FLOATS)
        for k in (1, 2, 3, *self.state_inputs, 7):
            if ctx.has_input(k) and ctx.type(k).dtype != dtype:
                raise ctx.error(f"input {k} has dtype {ctx.type(k).dtype}; every float input "
                                f"must be {dtype} like X")
        layout = int(ctx.attrs["layout"])
        if layout not in (0, 1):
            raise ctx.error(f"layout must be 0 or 1, got {layout}")
        x = ctx.type(0).shape
        if len(x) != 3:
            raise ctx.error(f"X must have rank 3, got shape {list(x)}")
        seq, batch, size = (x[1], x[0], x[2]) if layout else x
        direction = ctx.attrs["direction"]
        if direction not in ("forward", "reverse", "bidirectional"):
            raise ctx.error(f"direction must be forward, reverse or bidirectional, got "
                            f"{direction!r}")
        dirs = 2 if direction == "bidirectional" else 1
        hidden = ctx.type(2).shape[-1] if ctx.type(2).shape else 0
        if ctx.attrs["hidden_size"] is not None and int(ctx.attrs["hidden_size"]) != hidden:
            raise ctx.error(f"hidden_size is {ctx.attrs['hidden_size']} but R has shape "
                            f"{list(ctx.type(2).shape)}")
        rows = self.gates * hidden
        self._expect(ctx, 1, (dirs, rows, size), "W")
        self._expect(ctx, 2, (dirs, rows, hidden), "R")
        self._expect(ctx, 3, (dirs, 2 * rows), "B")
        if ctx.has_input(4):
            check_dtype(ctx, 4, ("int32",), "sequence_lens (input")
            self._expect(ctx, 4, (batch,), "sequence_lens")
        state = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
        for k in self.state_inputs:
            self._expect(ctx, k, state, "initial_h" if k == 5 else "initial_c")
        clip = ctx.attrs["clip"]
        if clip is not None and not float(clip) > 0:
            raise ctx.error(f"clip must be positive, got {clip}")
        acts = parse_activations(ctx, self.default_activations, dirs)
        reverse = (direction == "reverse",) if dirs == 1 else (False, True)
        return Config(seq, batch, hidden, dirs, reverse, acts,
                      None if clip is None else float(clip), layout,
                      "float64" if dtype == "float64" else "float32")

    @staticmethod
    def _expect(ctx, index, shape, what):
        if ctx.has_input(index) and tuple(ctx.type(index).shape) != tuple(shape):
            raise ctx.error(f"{what} has shape {list(ctx.type(index).shape)}, expected "
                            f"{list(shape)}")

    def infer(self, ctx):
        cfg = self.config(ctx)
        dtype = ctx.type(0).dtype
        t, b, d, h = cfg.seq, cfg.batch, cfg.dirs, cfg.hidden
        y = (b, t, d, h) if cfg.layout else (t, d, b, h)
        state = (b, d, h) if cfg.layout else (d, b, h)
        return [out_type(y, dtype)] + [out_type(state, dtype)] * len(self.state_inputs)

    # -- NumPy reference --------------------------------------------------------------
    def reference(self, ctx, x, w, r, b=None, lens=None, *rest):
        cfg = self.config(ctx)
        acc = np_dtype(cfg.acc)
        t_len, batch, hid = cfg.seq, cfg.batch, cfg.hidden
        x = (x.swapaxes(0, 1) if cfg.layout else x).astype(acc)
        states0 = [self._state_array(cfg, rest[k - 5] if k - 5 < len(rest) else None, acc)
                   for k in self.state_inputs]
        peep = rest[2] if len(rest) > 2 else None
        lengths = np.full(batch, t_len) if lens is None else np.clip(lens, 0, t_len)
        y = np.zeros((t_len, cfg.dirs, batch, hid), acc)
        finals = [np.zeros((cfg.dirs, batch, hid), acc) for _ in states0]
        for d in range(cfg.dirs):
            weights = self._np_weights(cfg, d, w, r, b, peep, acc)
            states = [s[d] for s in states0]
            for s in range(t_len):
                active = s < lengths
                t_idx = np.where(active, lengths - 1 - s, 0) if cfg.reverse[d] else \
                    np.full(batch, s)
                xt = x[t_idx, np.arange(batch)]
                new = self.np_cell(cfg, d, weights, xt, states)
                states = [np.where(active[:, None], n, o) for n, o in zip(new, states)]
                y[t_idx[active], d, np.arange(batch)[active]] = new[0][active]
            for f, st in zip(finals, states):
                f[d] = np.where((lengths > 0)[:, None], st, 0)
        dtype = np_dtype(ctx.type(0).dtype)
        y = y.transpose(2, 0, 1, 3) if cfg.layout else y
        finals = [f.transpose(1, 0, 2) if cfg.layout else f for f in finals]
        return [y.astype(dtype)] + [f.astype(dtype) for f in finals]

    def _state_array(self, cfg, value, acc):
        if value is None:
            return np.zeros((cfg.dirs, cfg.batch, cfg.hidden), acc)
        return (value.swapaxes(0, 1) if cfg.layout else value).astype(acc)

    def _np_weights(self, cfg, d, w, r, b, peep, acc):
        rows = self.gates * cfg.hidden
        bias = np.zeros(2 * rows, acc) if b is None else b[d].astype(acc)
        p = np.zeros(3 * cfg.hidden, acc) if peep is None else peep[d].astype(acc)
        return w[d].astype(acc), r[d].astype(acc), bias[:rows], bias[rows:], p

    def np_clip(self, cfg, v):
        return v if cfg.clip is None else np.clip(v, -cfg.clip, cfg.clip)

    # -- tensor expressions -----------------------------------------------------------
    def compute(self, ctx, x, w, r, b=None, lens=None, *rest):
        cfg = self.config(ctx)
        name = ctx.name or self.name
        acc = cfg.acc
        t_len = cfg.seq
        inputs = dict(x=x, w=w, r=r, b=b, lens=lens, rest=rest)

        def length(bi):
            if lens is None:
                return te.const(t_len, "int64")
            return te.minimum(te.maximum(te.cast(lens[bi], "int64"), 0), t_len)

        outputs = []  # per direction: list of per-step state lists
        for d in range(cfg.dirs):
            tag = f"{name}_d{d}"
            xw = self._input_projection(cfg, x, w, d, tag)
            states = [self._initial(cfg, rest, k - 5, d, tag) for k in self.state_inputs]
            steps = []
            for s in range(t_len):
                def time_of(bi, s=s, d=d):
                    if not cfg.reverse[d]:
                        return te.const(s, "int64")
                    return te.maximum(length(bi) - 1 - s, 0)

                def active(bi, s=s):
                    return te.const(s, "int64") < length(bi)

                step = _Step(cfg, d, s, acc, tag, xw, time_of, active, inputs)
                states = self.te_cell(step, states)
                steps.append(states)
            outputs.append(steps)
        return self._te_outputs(ctx, cfg, outputs, length, name)

    def _input_projection(self, cfg, x, w, d, tag):
        """x_t W[d]^T for every step: a [seq, batch, gates * hidden] stage."""
        k = te.reduce_axis(x.shape[2], "k")
        rows = self.gates * cfg.hidden

        def body(t, bi, g):
            xv = x[bi, t, k] if cfg.layout else x[t, bi, k]
            return te.sum(te.cast(xv, cfg.acc) * te.cast(w[d, g, k], cfg.acc), axis=k)

        return te.compute((cfg.seq, cfg.batch, rows), body, name=tag + "_xw")

    def _initial(self, cfg, rest, slot, d, tag):
        value = rest[slot] if slot < len(rest) else None

        def body(bi, h):
            if value is None:
                return te.const(0.0, cfg.acc)
            return te.cast(value[bi, d, h] if cfg.layout else value[d, bi, h], cfg.acc)

        return te.compute((cfg.batch, cfg.hidden), body, name=f"{tag}_init{slot}")

    def _te_outputs(self, ctx, cfg, outputs, length, name):
        dtype = ctx.out_types[0].dtype
        if cfg.seq == 0:  # no steps: Y is empty, the final states are 0
            return [None] + [te.compute(t.shape, lambda *i: te.const(0.0, dtype),
                                        name=f"{name}_final{k}")
                             for k, t in enumerate(ctx.out_types[1:])]
        zero = te.const(0.0, cfg.acc)

        def y_body(*i):
            t, d, bi, h = (i[1], i[2], i[0], i[3]) if cfg.layout else i
            picks = []
            for dd in range(cfg.dirs):
                step = (length(bi) - 1 - t) if cfg.reverse[dd] else t
                hs = [states[0] for states in outputs[dd]]
                picks.append(te.if_then_else(t < length(bi), select_tree(step, hs, (bi, h)),
                                             zero))
            return te.cast(_by_direction(d, picks), dtype)

        results = [te.compute(ctx.out_types[0].shape, y_body, name=name + "_Y")]
        for slot in range(len(self.state_inputs)):
            def final_body(*i, slot=slot):
                d, bi, h = (i[1], i[0], i[2]) if cfg.layout else i
                picks = [outputs[dd][-1][slot][bi, h] for dd in range(cfg.dirs)]
                value = te.if_then_else(length(bi) > 0, _by_direction(d, picks), zero)
                return te.cast(value, dtype)

            results.append(te.compute(ctx.out_types[1 + slot].shape, final_body,
                                      name=f"{name}_final{slot}"))
        return results


class _Step:
    """What a cell needs to build one time step of one direction."""

    def __init__(self, cfg, d, s, acc, tag, xw, time_of, active, inputs):
        self.cfg, self.d, self.s, self.acc = cfg, d, s, acc
        self.tag = f"{tag}_s{s}"
        self.xw, self.time_of, self.active = xw, time_of, active
        self.w, self.r, self.b = inputs["w"], inputs["r"], inputs["b"]
        self.rest = inputs["rest"]
        self.masked = inputs["lens"] is not None
        self.acts = cfg.acts[d]

    def projection(self, bi, g):
        """x_t W^T + Wb + Rb at batch ``bi``, row ``g`` of the gates."""
        value = self.xw[self.time_of(bi), bi, g]
        if self.b is not None:
            rows = self.r.shape[1]
            value = value + te.cast(self.b[self.d, g], self.acc) + \
                te.cast(self.b[self.d, rows + g], self.acc)
        return value

    def recurrent(self, h_prev, row0: int, count: int, suffix: str):
        """h_prev R[row0:row0+count]^T as a [batch, count] stage."""
        k = te.reduce_axis(self.cfg.hidden, "k")
        d, r, acc = self.d, self.r, self.acc
        return te.compute((self.cfg.batch, count), lambda bi, g: te.sum(
            h_prev[bi, k] * te.cast(r[d, row0 + g, k], acc), axis=k),
            name=f"{self.tag}_{suffix}")

    def clip(self, v):
        c = self.cfg.clip
        return v if c is None else te.minimum(te.maximum(v, -c), c)

    def act(self, slot: int, v):
        return te_activation(*self.acts[slot])(v)

    def keep(self, new_fn, old, suffix):
        """A state stage: the new value where the step is active, else the old one.

        Without sequence_lens the next step's recurrent projection may be the only reader
        of the stage; it is then materialized so that its activations are not inlined
        into (and recomputed by) that reduction."""
        if not self.masked:
            return self.materialize(new_fn, suffix)
        return te.compute((self.cfg.batch, self.cfg.hidden),
                          lambda bi, h: te.if_then_else(self.active(bi), new_fn(bi, h),
                                                        old[bi, h]),
                          name=f"{self.tag}_{suffix}")

    def materialize(self, fn, suffix):
        """A [batch, hidden] stage the default schedule computes once, never inlines."""
        def body(bi, h):
            unit = te.reduce_axis(1, "u")
            return te.sum(fn(bi, h), axis=unit)

        return te.compute((self.cfg.batch, self.cfg.hidden), body, name=f"{self.tag}_{suffix}")


def select_tree(index, tensors, idx):
    """``tensors[index][idx]`` for an int64 ``index`` expression, as a balanced tree of
    selects (out-of-range indices read the first or last tensor)."""
    def tree(lo, hi):
        if hi - lo == 1:
            return tensors[lo][idx]
        mid = (lo + hi) // 2
        return te.if_then_else(index < mid, tree(lo, mid), tree(mid, hi))

    return tree(0, len(tensors))


def _by_direction(d, picks):
    return picks[0] if len(picks) == 1 else te.if_then_else(d == 0, picks[0], picks[1])


@register
class RNN(Recurrent):
    """``H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)``."""

    name = "RNN"
    num_inputs = (3, 6)
    num_outputs = (2, 2)

    def np_cell(self, cfg, d, weights, xt, states):
        w, r, wb, rb, _ = weights
        (name, alpha, beta), = cfg.acts[d]
        h = np_activation(name, alpha, beta)(
            self.np_clip(cfg, xt @ w.T + states[0] @ r.T + wb + rb))
        return [h]

    def te_cell(self, step, states):
        h_prev, = states
        hr = step.recurrent(h_prev, 0, step.cfg.hidden, "hr")
        return [step.keep(lambda bi, h: step.act(0, step.clip(step.projection(bi, h)
                                                              + hr[bi, h])), h_prev, "h")]


@register
class GRU(Recurrent):
    """Gates z, r, h: ``z = f(.)``, ``r = f(.)``, ``h~ = g(X W_h^T + (r * H) R_h^T + ...)``
    (or ``r * (H R_h^T + Rb_h)`` with linear_before_reset), ``H = (1 - z) h~ + z H``."""

    name = "GRU"
    attrs = {**Recurrent.attrs, "linear_before_reset": 0}
    gates = 3
    default_activations = ("Sigmoid", "Tanh")
    num_inputs = (3, 6)
    num_outputs = (2, 2)

    def np_cell(self, cfg, d, weights, xt, states):
        w, r, wb, rb, _ = weights
        (f, fa, fb), (g, ga, gb) = cfg.acts[d]
        f, g = np_activation(f, fa, fb), np_activation(g, ga, gb)
        hid = cfg.hidden
        h = states[0]
        xw = xt @ w.T + wb
        hr = h @ r.T
        z = f(self.np_clip(cfg, xw[:, :hid] + hr[:, :hid] + rb[:hid]))
        rr = f(self.np_clip(cfg, xw[:, hid:2 * hid] + hr[:, hid:2 * hid] + rb[hid:2 * hid]))
        if cfg.linear_before_reset:
            cand = xw[:, 2 * hid:] + rr * (hr[:, 2 * hid:] + rb[2 * hid:])
        else:
            cand = xw[:, 2 * hid:] + (rr * h) @ r[2 * hid:].T + rb[2 * hid:]
        hh = g(self.np_clip(cfg, cand))
        return [(1 - z) * hh + z * h]

    def config(self, ctx):
        cfg = super().config(ctx)
        cfg.linear_before_reset = int(ctx.attrs["linear_before_reset"])
        if cfg.linear_before_reset not in (0, 1):
            raise ctx.error("linear_before_reset must be 0 or 1")
        return cfg

    def te_cell(self, step, states):
        h_prev, = states
        hid = step.cfg.hidden
        lbr = step.cfg.linear_before_reset
        hr = step.recurrent(h_prev, 0, 3 * hid if lbr else 2 * hid, "hr")

        def gate(slot_rows, bi, h):
            return step.act(0, step.clip(step.projection(bi, slot_rows + h)
                                         + hr[bi, slot_rows + h]))

        if lbr:
            def candidate(bi, h):
                rb = self._rec_bias(step, 2 * hid + h)
                xw = step.xw[step.time_of(bi), bi, 2 * hid + h] + self._in_bias(step, 2 * hid + h)
                return xw + gate(hid, bi, h) * (hr[bi, 2 * hid + h] + rb)
        else:
            rh = step.materialize(lambda bi, k: gate(hid, bi, k) * h_prev[bi, k], "rh")
            rhr = step.recurrent(rh, 2 * hid, hid, "rhr")

            def candidate(bi, h):
                return step.projection(bi, 2 * hid + h) + rhr[bi, h]

        def new_h(bi, h):
            z = gate(0, bi, h)
            cand = step.act(1, step.clip(candidate(bi, h)))
            return (1.0 - z) * cand + z * h_prev[bi, h]

        return [step.keep(new_h, h_prev, "h")]

    @staticmethod
    def _in_bias(step, g):
        return te.cast(step.b[step.d, g], step.acc) if step.b is not None else 0.0

    @staticmethod
    def _rec_bias(step, g):
        rows = step.r.shape[1]
        return te.cast(step.b[step.d, rows + g], step.acc) if step.b is not None else 0.0


@register
class LSTM(Recurrent):
    """Gates i, o, f, c with peepholes P[iof]: ``C = f * C + i * g(.)``,
    ``H = o * h(C)``; ``input_forget`` couples the forget gate to ``1 - i``."""

    name = "LSTM"
    attrs = {**Recurrent.attrs, "input_forget": 0}
    gates = 4
    default_activations = ("Sigmoid", "Tanh", "Tanh")
    state_inputs = (5, 6)
    num_inputs = (3, 8)
    num_outputs = (3, 3)

    def config(self, ctx):
        cfg = super().config(ctx)
        self._expect(ctx, 7, (cfg.dirs, 3 * cfg.hidden), "P")
        cfg.input_forget = int(ctx.attrs["input_forget"])
        if cfg.input_forget not in (0, 1):
            raise ctx.error("input_forget must be 0 or 1")
        return cfg

    def np_cell(self, cfg, d, weights, xt, states):
        w, r, wb, rb, p = weights
        h, c = states
        (f, fa, fb), (g, ga, gb), (hn, ha, hb) = cfg.acts[d]
        f, g, hact = np_activation(f, fa, fb), np_activation(g, ga, gb), np_activation(hn, ha, hb)
        hid = cfg.hidden
        gates = xt @ w.T + h @ r.T + wb + rb
        gi, go, gf, gc = (gates[:, k * hid:(k + 1) * hid] for k in range(4))
        pi, po, pf = p[:hid], p[hid:2 * hid], p[2 * hid:]
        i = f(self.np_clip(cfg, gi + pi * c))
        ff = 1 - i if cfg.input_forget else f(self.np_clip(cfg, gf + pf * c))
        c_new = ff * c + i * g(self.np_clip(cfg, gc))
        o = f(self.np_clip(cfg, go + po * c_new))
        return [o * hact(c_new), c_new]

    def te_cell(self, step, states):
        h_prev, c_prev = states
        hid = step.cfg.hidden
        hr = step.recurrent(h_prev, 0, 4 * hid, "hr")
        peep = step.rest[2] if len(step.rest) > 2 else None

        def pre(k, bi, h):
            return step.projection(bi, k * hid + h) + hr[bi, k * hid + h]

        def peephole(k, h, cell):
            if peep is None:
                return 0.0
            return te.cast(peep[step.d, k * hid + h], step.acc) * cell

        def input_gate(bi, h):
            return step.act(0, step.clip(pre(0, bi, h) + peephole(0, h, c_prev[bi, h])))

        def new_c(bi, h):
            i = input_gate(bi, h)
            if step.cfg.input_forget:
                f = 1.0 - i
            else:
                f = step.act(0, step.clip(pre(2, bi, h) + peephole(2, h, c_prev[bi, h])))
            return f * c_prev[bi, h] + i * step.act(1, step.clip(pre(3, bi, h)))

        c_new = te.compute((step.cfg.batch, hid), new_c, name=step.tag + "_cnew")

        def new_h(bi, h):
            o = step.act(0, step.clip(pre(1, bi, h) + peephole(1, h, c_new[bi, h])))
            return o * step.act(2, c_new[bi, h])

        h_state = step.keep(new_h, h_prev, "h")
        c_state = step.keep(lambda bi, h: c_new[bi, h], c_prev, "c") if step.masked else c_new
        return [h_state, c_state]
