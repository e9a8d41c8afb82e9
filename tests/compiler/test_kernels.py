"""dlc.compiler.kernels: each kernel's floating-point operations are the algorithm's
(counted on the unscheduled loop nest of its tensor expressions), whatever the schedule."""

from __future__ import annotations

import numpy as np

import dlc
from dlc.graph.builder import GraphBuilder


def test_matmul_flops_are_2mnk():
    m, k, n = 4, 24, 32
    g = GraphBuilder("mm")
    g.output(g.op("MatMul", g.input("a", (m, k)), g.input("b", (k, n))))
    (kernel,) = dlc.compile(g.build()).kernels
    assert kernel.flops == 2 * m * n * k


def test_dense_with_constant_weights_and_conv_flops():
    g = GraphBuilder("convnet")
    x = g.input("x", (1, 3, 10, 10))
    w = g.constant(np.ones((8, 3, 3, 3), np.float32))
    y = g.op("Conv", x, w, pads=[1, 1, 1, 1])
    flat = g.op("Reshape", y, g.constant(np.array([1, 800], np.int64)))
    g.output(flat @ g.constant(np.ones((800, 16), np.float32)))
    model = dlc.compile(g.build())
    flops = {kernel.name.split("_")[1]: kernel.flops for kernel in model.kernels}
    assert flops["conv"] == 2 * 8 * 10 * 10 * 3 * 3 * 3
    assert flops["matmul"] == 2 * 1 * 16 * 800
    assert all(kernel.flops == 0 for kernel in model.kernels
               if kernel.name.split("_")[1] not in ("conv", "matmul")), model.kernels
