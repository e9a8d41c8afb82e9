"""Fixtures for code generation tests: compile one `emit_math` call into a callable kernel.

    kernel = math_kernels.get("exp", "float32", width=16)
    y = kernel(x)          # x: NumPy array; y = exp(x), computed by the native code

Each kernel is `void f(ptr in0, [ptr in1,] ptr out, i64 n)`, looping over n elements `width`
at a time (a scalar type when width is 1, a vector otherwise), optimized at O3 for the host
CPU, linked against libm and loaded with ctypes. Kernels are cached for the session.
"""

from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess

import numpy as np
import pytest
from llvmlite import ir

from dlc.codegen.llvm import machine
from dlc.codegen.llvm.mathlib import ARITY, BFloatType, emit_math


def element_type(dtype: str) -> ir.Type:
    return {"float32": ir.FloatType(), "float64": ir.DoubleType(), "float16": ir.HalfType(),
            "bfloat16": BFloatType()}[dtype]


def numpy_dtype(dtype: str):
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return ml_dtypes.bfloat16
    return np.dtype(dtype)


@functools.cache
def libm_path() -> str:
    """Absolute path of the C math library (libm.so.6) to link kernels against."""
    candidates = [os.path.join(d, "libm.so.6") for d in (
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib",
        "/usr/lib")]
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc:
        out = subprocess.run([cc, "-print-file-name=libm.so.6"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    for path in candidates:
        if os.path.isabs(path) and os.path.exists(path):
            return path
    pytest.skip("libm.so.6 not found")


def build_module(name: str, dtype: str, width: int, vector: bool) -> str:
    """LLVM IR text of `void f(ptr in0, [ptr in1,] ptr out, i64 n)` applying `name`."""
    elem = element_type(dtype)
    ty = ir.VectorType(elem, width) if vector else elem
    i64 = ir.IntType(64)
    arity = ARITY.get(name, 1)
    module = ir.Module(name=f"{name}_{dtype}_{width}")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.PointerType()] * (arity + 1)
                                             + [i64]), name="f")
    *inputs, out, n = fn.args
    entry, cond, body, done = (fn.append_basic_block(b) for b in ("entry", "cond", "body",
                                                                   "done"))
    builder = ir.IRBuilder(entry)
    builder.branch(cond)
    builder.position_at_end(cond)
    i = builder.phi(i64)
    i.add_incoming(ir.Constant(i64, 0), entry)
    builder.cbranch(builder.icmp_signed("<", i, n), body, done)
    builder.position_at_end(body)
    align = {"float64": 8, "float32": 4}.get(dtype, 2)
    args = [builder.load(builder.gep(p, [i], source_etype=elem), typ=ty, align=align)
            for p in inputs]
    result = emit_math(builder, name, args, dtype)
    builder.store(result, builder.gep(out, [i], source_etype=elem), align=align)
    i.add_incoming(builder.add(i, ir.Constant(i64, width)), body)
    builder.branch(cond)
    builder.position_at_end(done)
    builder.ret_void()
    return str(module)


class MathKernel:
    """A compiled kernel, callable on NumPy arrays (broadcast together, any shape)."""

    def __init__(self, path: str, dtype: str, width: int, arity: int):
        self.lib = ctypes.CDLL(path)
        self.fn = self.lib.f
        self.fn.argtypes = [ctypes.c_void_p] * (arity + 1) + [ctypes.c_int64]
        self.fn.restype = None
        self.dtype = numpy_dtype(dtype)
        self.width = width

    def __call__(self, *inputs) -> np.ndarray:
        arrays = np.broadcast_arrays(*[np.asarray(a, dtype=self.dtype) for a in inputs])
        shape, size = arrays[0].shape, arrays[0].size
        padded = -(-size // self.width) * self.width
        flat = []
        for a in arrays:
            buf = np.ones(padded, dtype=self.dtype)
            buf[:size] = a.ravel()
            flat.append(buf)
        out = np.empty(padded, dtype=self.dtype)
        self.fn(*[a.ctypes.data for a in flat], out.ctypes.data, padded)
        return out[:size].reshape(shape)


class MathKernels:
    """Session cache of compiled math kernels, keyed by (name, dtype, width, cpu)."""

    def __init__(self, directory):
        self.directory = directory
        self.cache: dict[tuple, MathKernel] = {}

    @staticmethod
    def _machine(cpu: str | None, features: str | None):
        if cpu is None:
            return machine.target_machine(machine.host_cpu_name(), machine.host_cpu_features())
        return machine.target_machine(cpu, features or "")

    def optimized(self, name, dtype, width, vector=None, cpu=None, features=None):
        vector = width > 1 if vector is None else vector
        tm = self._machine(cpu, features)
        return machine.optimize(build_module(name, dtype, width, vector), tm), tm

    def assembly(self, name, dtype, width, cpu=None, features=None) -> str:
        mod, tm = self.optimized(name, dtype, width, cpu=cpu, features=features)
        return machine.emit_assembly(mod, tm)

    def get(self, name, dtype, width=16, vector=None, cpu=None, features=None) -> MathKernel:
        key = (name, dtype, width, vector, cpu, features)
        if key not in self.cache:
            mod, tm = self.optimized(name, dtype, width, vector, cpu, features)
            lib = machine.link_shared([machine.emit_object(mod, tm)], [libm_path()])
            path = os.path.join(self.directory, f"k{len(self.cache)}.so")
            with open(path, "wb") as f:
                f.write(lib)
            self.cache[key] = MathKernel(path, dtype, width, ARITY[name])
        return self.cache[key]


@pytest.fixture(scope="session")
def math_kernels(tmp_path_factory) -> MathKernels:
    return MathKernels(str(tmp_path_factory.mktemp("mathlib")))
