"""Neural-network operators: normalization, softmax, losses, convolution, pooling, attention, matmul."""
