"""Benchmark models built in code, written the way PyTorch's exporter writes them (opset 17).

Every builder returns an ``onnx.ModelProto`` with seeded random weights (no downloads) and
takes size parameters, so the tests can compile small versions of the same structure:

* ``resnet18``: torchvision's ResNet-18. Conv (with bias) -> BatchNormalization -> Relu,
  MaxPool, BasicBlocks with a residual Add (1x1 stride-2 Conv + BatchNormalization on the
  shortcut where the shape changes), GlobalAveragePool -> Flatten -> Gemm(transB=1).
* ``mobilenet_v2``: torchvision's MobileNetV2. Conv -> BatchNormalization -> Clip(0, 6)
  (ReLU6), inverted residual blocks (1x1 expansion, depthwise 3x3 with group = channels,
  1x1 linear projection, residual Add when the stride is 1 and the channels match), 1x1
  conv to 1280, GlobalAveragePool -> Flatten -> Gemm. Its convolutions have no bias, as in
  torchvision, so the benchmarks exercise BatchNormalization folding into both kinds of Conv.
* ``bert_encoder``: Hugging Face BERT encoder layers as torch exports them: three separate
  Q/K/V projections (MatMul + Add with the bias first), Reshape/Transpose to heads (K
  transposed straight to [B, heads, d, S]), MatMul, Div by sqrt(64), Add of the extended
  attention mask, Softmax(axis=-1), MatMul with V, Transpose/Reshape back, output MatMul + Add,
  residual Add, LayerNormalization, FFN MatMul + Add to 3072, Gelu in the erf form
  (Div, Erf, Add, Mul, Mul), MatMul + Add back to 768, residual Add, LayerNormalization.
  Inputs: ``hidden_states`` [1, S, 768] float32 (embeddings not included) and
  ``attention_mask`` [1, S] int64, turned into the additive mask once, as transformers does:
  Unsqueeze -> Cast -> Sub(1, m) -> Mul(finfo(float32).min). ``decomposed_layernorm=True``
  writes LayerNorm as ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add (older exports).
* ``mlp``: 784 -> 1024 -> 1024 -> 10 with Relu, batch 32, Gemm(transB=1) layers (nn.Linear
  on 2-D input).
* single ops: ``conv3x3`` (1x64x56x56 -> 64, pad 1), ``conv1x1`` (1x256x56x56 -> 64),
  ``depthwise3x3`` (1x144x56x56, group 144, stride 1, pad 1), ``matmul`` (1024^3),
  ``softmax`` ([12, 128, 128], BERT's scores), ``layernorm`` ([128, 768]).

``CASES`` maps each benchmark name to (full-size builder, small builder of the same
structure); ``random_inputs(model)`` gives seeded inputs for any of them. Run this file to
check every model with onnx.checker and run it once with onnxruntime.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
_FLOAT_MIN = float(np.finfo(np.float32).min)


class _Builder:
    """Nodes and initializers of one graph, with PyTorch-like layer helpers and names."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self._count: dict = {}

    def _name(self, prefix: str) -> str:
        k = self._count.get(prefix, 0)
        self._count[prefix] = k + 1
        return f"{prefix}_{k}"

    def const(self, array, prefix: str = "const") -> str:
        name = self._name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def op(self, op_type: str, inputs, prefix: str | None = None, **attrs) -> str:
        name = self._name(prefix or op_type)
        out = name + "_output_0"
        self.nodes.append(helper.make_node(op_type, list(inputs), [out], name=name, **attrs))
        return out

    def weight(self, shape, fan_in: int, gain: float = 2.0) -> str:
        """He-style normal weights, so activations keep their scale through deep nets."""
        std = math.sqrt(gain / fan_in)
        w = self.rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
        return self.const(w, "weight")

    def bias(self, n: int, scale: float = 0.1) -> str:
        return self.const((self.rng.standard_normal(n) * scale).astype(np.float32), "bias")

    # -- CNN layers ------------------------------------------------------------------------
    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, group: int = 1,
             bias: bool = True) -> str:
        w = self.weight((cout, cin // group, k, k), fan_in=cin // group * k * k)
        inputs = [x, w] + ([self.bias(cout)] if bias else [])
        return self.op("Conv", inputs, dilations=[1, 1], group=group, kernel_shape=[k, k],
                       pads=[k // 2] * 4, strides=[stride, stride])

    def batchnorm(self, x: str, c: int, gamma: float = 1.0) -> str:
        rng = self.rng
        scale = (gamma * rng.uniform(0.5, 1.5, c)).astype(np.float32)
        shift = (rng.standard_normal(c) * 0.1).astype(np.float32)
        mean = (rng.standard_normal(c) * 0.1).astype(np.float32)
        var = rng.uniform(0.5, 1.5, c).astype(np.float32)
        return self.op("BatchNormalization",
                       [x, self.const(scale, "bn_weight"), self.const(shift, "bn_bias"),
                        self.const(mean, "bn_running_mean"), self.const(var, "bn_running_var")],
                       epsilon=1e-5, momentum=0.9)

    def relu6(self, x: str) -> str:
        return self.op("Clip", [x, self.const(np.float32(0.0), "clip_min"),
                                self.const(np.float32(6.0), "clip_max")])

    def classifier(self, x: str, features: int, classes: int) -> str:
        x = self.op("GlobalAveragePool", [x])
        x = self.op("Flatten", [x], axis=1)
        return self.gemm(x, features, classes, gain=1.0)

    def gemm(self, x: str, fin: int, fout: int, gain: float = 2.0) -> str:
        w = self.weight((fout, fin), fan_in=fin, gain=gain)
        return self.op("Gemm", [x, w, self.bias(fout)], alpha=1.0, beta=1.0, transB=1)

    # -- transformer layers ----------------------------------------------------------------
    def linear3d(self, x: str, fin: int, fout: int, gain: float = 1.0) -> str:
        """nn.Linear on a 3-D input: MatMul with W^T, then Add(bias, product)."""
        w = self.weight((fin, fout), fan_in=fin, gain=gain)
        y = self.op("MatMul", [x, w])
        return self.op("Add", [self.bias(fout, 0.02), y])

    def layernorm(self, x: str, n: int, decomposed: bool) -> str:
        scale = self.const((1.0 + self.rng.standard_normal(n) * 0.1).astype(np.float32),
                           "ln_weight")
        shift = self.const((self.rng.standard_normal(n) * 0.1).astype(np.float32), "ln_bias")
        if not decomposed:
            return self.op("LayerNormalization", [x, scale, shift], axis=-1, epsilon=1e-12)
        mean = self.op("ReduceMean", [x], axes=[-1], keepdims=1)
        d = self.op("Sub", [x, mean])
        sq = self.op("Pow", [d, self.const(np.float32(2.0), "pow_exp")])
        var = self.op("ReduceMean", [sq], axes=[-1], keepdims=1)
        std = self.op("Sqrt", [self.op("Add", [var, self.const(np.float32(1e-12), "eps")])])
        return self.op("Add", [self.op("Mul", [self.op("Div", [d, std]), scale]), shift])

    def gelu(self, x: str) -> str:
        """x * 0.5 * (1 + erf(x / sqrt(2))), node for node as torch exports nn.GELU."""
        e = self.op("Erf", [self.op("Div", [x, self.const(np.float32(math.sqrt(2.0)),
                                                          "sqrt2")])])
        one = self.op("Add", [e, self.const(np.float32(1.0), "one")])
        return self.op("Mul", [self.op("Mul", [x, one]), self.const(np.float32(0.5), "half")])

    def model(self, name: str, inputs, outputs) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="dlc-benchmarks")
        model.ir_version = 8
        onnx.checker.check_model(model, full_check=True)
        return model


def _tensor(name: str, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, list(shape))


# -- CNNs -----------------------------------------------------------------------------------
def resnet18(image: int = 224, width: int = 64, classes: int = 1000, batch: int = 1,
             seed: int = 0) -> onnx.ModelProto:
    """ResNet-18 (torchvision layout) on [batch, 3, image, image]; ``width`` is the first
    stage's channel count (64 in the real model), doubled at each later stage."""
    b = _Builder(seed)
    x = b.op("Relu", [b.batchnorm(b.conv("input", 3, width, 7, stride=2), width)])
    x = b.op("MaxPool", [x], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2],
             ceil_mode=0, dilations=[1, 1])
    cin = width
    for stage in range(4):
        cout = width * 2 ** stage
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            y = b.op("Relu", [b.batchnorm(b.conv(x, cin, cout, 3, stride), cout)])
            # A smaller gamma on the branch's last BN keeps the residual sum's scale in
            # check, like the zero-init-residual trick (a random model otherwise blows up).
            y = b.batchnorm(b.conv(y, cout, cout, 3), cout, gamma=0.5)
            shortcut = x
            if stride != 1 or cin != cout:
                shortcut = b.batchnorm(b.conv(x, cin, cout, 1, stride), cout)
            x = b.op("Relu", [b.op("Add", [y, shortcut])])
            cin = cout
    b.classifier(x, cin, classes)
    b.nodes[-1].output[0] = "output"
    return b.model("resnet18", [_tensor("input", [batch, 3, image, image])],
                   [_tensor("output", [batch, classes])])


# (expansion t, channels c, repeats n, first stride s), as in the MobileNetV2 paper.
MOBILENET_V2_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _divisible(v: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: round channels to a multiple of 8, losing < 10 %."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mobilenet_v2(image: int = 224, width_mult: float = 1.0, classes: int = 1000,
                 batch: int = 1, conv_bias: bool = False, max_repeats: int | None = None,
                 seed: int = 0) -> onnx.ModelProto:
    """MobileNetV2 (torchvision layout) on [batch, 3, image, image]; ``max_repeats`` caps
    the blocks per stage (2 keeps every kind of block: stride 1 and 2, with and without a
    residual Add, with and without expansion)."""
    b = _Builder(seed)

    def conv_bn(x, cin, cout, k, stride=1, group=1, act=True, gamma=1.0):
        y = b.batchnorm(b.conv(x, cin, cout, k, stride, group, bias=conv_bias), cout, gamma)
        return b.relu6(y) if act else y

    cin = _divisible(32 * width_mult)
    last = _divisible(1280 * max(1.0, width_mult))
    x = conv_bn("input", 3, cin, 3, stride=2)
    for t, c, n, s in MOBILENET_V2_SETTINGS:
        n = min(n, max_repeats or n)
        cout = _divisible(c * width_mult)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            y = conv_bn(x, cin, hidden, 1) if t != 1 else x
            y = conv_bn(y, hidden, hidden, 3, stride, group=hidden)
            residual = stride == 1 and cin == cout
            y = conv_bn(y, hidden, cout, 1, act=False, gamma=0.5 if residual else 1.0)
            x = b.op("Add", [x, y]) if residual else y
            cin = cout
    x = conv_bn(x, cin, last, 1)
    b.classifier(x, last, classes)
    b.nodes[-1].output[0] = "output"
    return b.model("mobilenet_v2", [_tensor("input", [batch, 3, image, image])],
                   [_tensor("output", [batch, classes])])


# -- transformer ----------------------------------------------------------------------------
def bert_encoder(layers: int = 4, seq: int = 128, hidden: int = 768, heads: int = 12,
                 ffn: int = 3072, batch: int = 1, decomposed_layernorm: bool = False,
                 seed: int = 0) -> onnx.ModelProto:
    """BERT-base encoder layers (Hugging Face's BertLayer as torch exports it)."""
    b = _Builder(seed)
    head_dim = hidden // heads
    # The extended attention mask, computed once: (1 - mask[:, None, None, :]) * min.
    m = b.op("Unsqueeze", ["attention_mask", b.const(np.array([1, 2], np.int64), "axes")])
    m = b.op("Cast", [m], to=TensorProto.FLOAT)
    m = b.op("Sub", [b.const(np.float32(1.0), "one"), m])
    mask = b.op("Mul", [m, b.const(np.float32(_FLOAT_MIN), "mask_min")])
    to_heads = b.const(np.array([batch, seq, heads, head_dim], np.int64), "shape")
    from_heads = b.const(np.array([batch, seq, hidden], np.int64), "shape")
    x = "hidden_states"
    for _ in range(layers):
        q, k, v = (b.op("Reshape", [b.linear3d(x, hidden, hidden), to_heads])
                   for _ in range(3))
        q = b.op("Transpose", [q], perm=[0, 2, 1, 3])
        k = b.op("Transpose", [k], perm=[0, 2, 3, 1])
        v = b.op("Transpose", [v], perm=[0, 2, 1, 3])
        scores = b.op("Div", [b.op("MatMul", [q, k]),
                              b.const(np.float32(math.sqrt(head_dim)), "scale")])
        probs = b.op("Softmax", [b.op("Add", [scores, mask])], axis=-1)
        ctx = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = b.op("Reshape", [ctx, from_heads])
        attn = b.op("Add", [b.linear3d(ctx, hidden, hidden), x])
        attn = b.layernorm(attn, hidden, decomposed_layernorm)
        h = b.gelu(b.linear3d(attn, hidden, ffn))
        x = b.layernorm(b.op("Add", [b.linear3d(h, ffn, hidden), attn]), hidden,
                        decomposed_layernorm)
    b.nodes[-1].output[0] = "last_hidden_state"
    return b.model("bert_encoder",
                   [_tensor("hidden_states", [batch, seq, hidden]),
                    _tensor("attention_mask", [batch, seq], TensorProto.INT64)],
                   [_tensor("last_hidden_state", [batch, seq, hidden])])


def mlp(batch: int = 32, sizes=(784, 1024, 1024, 10), seed: int = 0) -> onnx.ModelProto:
    """A multilayer perceptron: Gemm(transB=1) + Relu between layers, logits out."""
    b = _Builder(seed)
    x = "input"
    for k, (fin, fout) in enumerate(zip(sizes[:-1], sizes[1:])):
        x = b.gemm(x, fin, fout, gain=2.0 if k < len(sizes) - 2 else 1.0)
        if k < len(sizes) - 2:
            x = b.op("Relu", [x])
    b.nodes[-1].output[0] = "output"
    return b.model("mlp", [_tensor("input", [batch, sizes[0]])],
                   [_tensor("output", [batch, sizes[-1]])])


# -- single operators -----------------------------------------------------------------------
def conv2d(cin: int = 64, cout: int = 64, size: int = 56, k: int = 3, group: int = 1,
           seed: int = 0) -> onnx.ModelProto:
    """One Conv with bias, stride 1, "same" padding, on [1, cin, size, size]."""
    b = _Builder(seed)
    b.conv("input", cin, cout, k, group=group)
    b.nodes[-1].output[0] = "output"
    return b.model(f"conv{k}x{k}_g{group}", [_tensor("input", [1, cin, size, size])],
                   [_tensor("output", [1, cout, size, size])])


def conv3x3(size: int = 56, channels: int = 64, seed: int = 0) -> onnx.ModelProto:
    """ResNet-18 stage 1's 3x3 convolution: 1x64x56x56 -> 64."""
    return conv2d(channels, channels, size, 3, seed=seed)


def conv1x1(size: int = 56, cin: int = 256, cout: int = 64, seed: int = 0) -> onnx.ModelProto:
    """ResNet-50 stage 1's 1x1 reduction: 1x256x56x56 -> 64."""
    return conv2d(cin, cout, size, 1, seed=seed)


def depthwise3x3(size: int = 56, channels: int = 144, seed: int = 0) -> onnx.ModelProto:
    """MobileNetV2's depthwise 3x3 at 56x56 (144 channels, group 144, stride 1)."""
    return conv2d(channels, channels, size, 3, group=channels, seed=seed)


def matmul(m: int = 1024, n: int = 1024, k: int = 1024, seed: int = 0) -> onnx.ModelProto:
    """C = A @ B with both operands as inputs."""
    b = _Builder(seed)
    b.nodes.append(helper.make_node("MatMul", ["a", "b"], ["output"], name="MatMul_0"))
    return b.model("matmul", [_tensor("a", [m, k]), _tensor("b", [k, n])],
                   [_tensor("output", [m, n])])


def softmax(shape=(12, 128, 128), seed: int = 0) -> onnx.ModelProto:
    """Softmax over the last axis of BERT-base's attention scores (12 heads, sequence 128)."""
    b = _Builder(seed)
    b.nodes.append(helper.make_node("Softmax", ["input"], ["output"], name="Softmax_0",
                                    axis=-1))
    return b.model("softmax", [_tensor("input", shape)], [_tensor("output", shape)])


def layernorm(rows: int = 128, hidden: int = 768, decomposed: bool = False,
              seed: int = 0) -> onnx.ModelProto:
    """LayerNormalization over the last axis of [rows, hidden] (BERT-base's activations)."""
    b = _Builder(seed)
    b.layernorm("input", hidden, decomposed)
    b.nodes[-1].output[0] = "output"
    return b.model("layernorm", [_tensor("input", [rows, hidden])],
                   [_tensor("output", [rows, hidden])])


# -- the benchmark cases --------------------------------------------------------------------
#: name -> (full-size builder, small builder with the same structure, for fast tests)
CASES = {
    "resnet18": (resnet18, lambda: resnet18(image=64, width=16, classes=10)),
    "mobilenet_v2": (mobilenet_v2,
                     lambda: mobilenet_v2(image=64, width_mult=0.25, classes=10,
                                          max_repeats=2)),
    "bert": (bert_encoder, lambda: bert_encoder(layers=1, seq=32, hidden=64, heads=4,
                                                ffn=256)),
    "bert_decomposed_ln": (lambda: bert_encoder(decomposed_layernorm=True),
                           lambda: bert_encoder(layers=1, seq=32, hidden=64, heads=4,
                                                ffn=256, decomposed_layernorm=True)),
    "mlp": (mlp, lambda: mlp(batch=4, sizes=(64, 128, 128, 10))),
    "conv3x3": (conv3x3, lambda: conv3x3(size=14, channels=16)),
    "conv1x1": (conv1x1, lambda: conv1x1(size=14, cin=32, cout=16)),
    "depthwise3x3": (depthwise3x3, lambda: depthwise3x3(size=14, channels=24)),
    "matmul": (matmul, lambda: matmul(64, 48, 80)),
    "softmax": (softmax, lambda: softmax((4, 32, 32))),
    "layernorm": (layernorm, lambda: layernorm(32, 64)),
    # square float32 GEMMs with both operands as inputs (dlc's MatMul template)
    "gemm256": (lambda: matmul(256, 256, 256), lambda: matmul(32, 32, 32)),
    "gemm512": (lambda: matmul(512, 512, 512), lambda: matmul(32, 32, 32)),
    "gemm1024": (lambda: matmul(1024, 1024, 1024), lambda: matmul(32, 32, 32)),
    "gemm2048": (lambda: matmul(2048, 2048, 2048), lambda: matmul(32, 32, 32)),
}


def random_inputs(model: onnx.ModelProto, seed: int = 0) -> dict:
    """Seeded inputs for a model: standard normal floats; for an int64 ``attention_mask``,
    ones with the last quarter of each sequence as padding (zeros)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    init_names = {i.name for i in model.graph.initializer}
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        t = vi.type.tensor_type
        shape = [d.dim_value for d in t.shape.dim]
        if t.elem_type == TensorProto.INT64:
            mask = np.ones(shape, np.int64)
            mask[..., shape[-1] - shape[-1] // 4:] = 0
            feeds[vi.name] = mask
        else:
            feeds[vi.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def ort_session(model: onnx.ModelProto, threads: int = 1, optimize: bool = True):
    """An onnxruntime CPU session (all graph optimizations unless ``optimize`` is False)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                        else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def main() -> int:
    """Check every model (full and small) and run it once with onnxruntime."""
    for name, builders in CASES.items():
        for size, build in zip(("full", "small"), builders):
            model = build()
            feeds = random_inputs(model)
            out = ort_session(model).run(None, feeds)[0]
            print(f"{name:20s} {size:5s} {len(model.graph.node):4d} nodes  "
                  f"{sum(np.prod(i.dims) for i in model.graph.initializer) / 1e6:7.2f} M weights"
                  f"  output {list(out.shape)} max|y| {np.abs(out).max():.3g}")
            assert np.isfinite(out).all(), f"{name} ({size}): non-finite output"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
