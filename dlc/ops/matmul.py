"""Matrix products: MatMul, Gemm, Einsum, integer variants."""
