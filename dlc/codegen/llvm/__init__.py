"""LLVM code generation with llvmlite: target machines, linking, the math library."""
