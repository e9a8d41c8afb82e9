"""The operator library: one module per op family; importing this package registers all."""

from dlc.ops import (  # noqa: F401
    attention,
    cast,
    control,
    conv,
    elementwise,
    fused,
    host,
    image,
    indexing,
    logical,
    loss,
    matmul,
    misc,
    movement,
    normalization,
    pooling,
    quantize,
    reduction,
    rnn,
    shape,
    signal,
    softmax,
)
from dlc.ops.registry import OPS, OpContext, OpDef, get, register  # noqa: F401
