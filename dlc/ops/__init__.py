"""The operator library: one module per op family; importing this package registers all."""

from dlc.ops import (  # noqa: F401
    elementwise, logical, cast, reduction, normalization, softmax, loss, conv, pooling, matmul, attention, image, shape, movement, indexing, host, quantize, rnn, control, signal, misc,
)
from dlc.ops.registry import OPS, OpContext, OpDef, get, register  # noqa: F401
