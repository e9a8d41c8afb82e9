"""Run a compiled graph: check inputs, call the native entry function over a private
arena, return fresh output arrays. NumPy and ctypes only.

Thread safety: ``run`` may be called from several threads at once. Each call takes an arena
of its own from a pool (one is allocated when all are in use), writes into freshly
allocated output arrays, and only reads the shared weights; ctypes releases the GIL
during the native call, so calls overlap.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

from dlc.errors import ArgumentError, DlcError
from dlc.runtime.module import Module, _numpy_dtype, before_call


class Executor:
    """Executes an execution plan (see dlc.compiler.plan) with a loaded Module."""

    def __init__(self, module: Module, plan: dict, weights: np.ndarray, constants: dict):
        self.module = module
        self.plan = plan
        self.weights = weights
        self.constants = constants
        self.inputs = plan["inputs"]
        self.outputs = plan["outputs"]
        self.input_names = [i["name"] for i in self.inputs]
        self.output_names = [o["name"] for o in self.outputs]
        self._in_dtypes = [_numpy_dtype(i["dtype"]) for i in self.inputs]
        self._out_dtypes = [_numpy_dtype(o["dtype"]) for o in self.outputs]
        self._entry = None
        if plan.get("entry") and module is not None:
            self._entry = module.native(plan["entry"])
            self._entry.restype = ctypes.c_int32
            self._entry.argtypes = [ctypes.c_void_p] * 4
        self._arenas: list = []
        self._lock = threading.Lock()

    def _take_arena(self) -> np.ndarray:
        with self._lock:
            if self._arenas:
                return self._arenas.pop()
        return np.empty(max(self.plan["arena_bytes"], 64) + 64, dtype=np.uint8)

    def _give_arena(self, arena: np.ndarray) -> None:
        with self._lock:
            self._arenas.append(arena)

    def bind_inputs(self, args, kwargs) -> list:
        """Inputs in graph order from positional arrays, a dict, or keywords."""
        if len(args) == 1 and isinstance(args[0], dict) and not kwargs:
            kwargs, args = dict(args[0]), ()
        if len(args) == 1 and isinstance(args[0], (list, tuple)) and len(self.inputs) != 1:
            args = tuple(args[0])
        if args and kwargs:
            raise ArgumentError("pass inputs either by position or by name, not both")
        if kwargs:
            unknown = sorted(set(kwargs) - set(self.input_names))
            if unknown:
                raise ArgumentError(f"unknown input name(s) {', '.join(unknown)}; the model's "
                                    f"inputs are {', '.join(self.input_names)}")
            missing = [n for n in self.input_names if n not in kwargs]
            if missing:
                raise ArgumentError(f"missing input(s) {', '.join(missing)}")
            args = tuple(kwargs[n] for n in self.input_names)
        if len(args) != len(self.inputs):
            raise ArgumentError(f"the model takes {len(self.inputs)} input(s) "
                                f"({', '.join(self.input_names)}), got {len(args)}")
        arrays = []
        for spec, dtype, value in zip(self.inputs, self._in_dtypes, args):
            arr = value if isinstance(value, np.ndarray) else np.asarray(value)
            if arr.dtype != dtype:
                raise ArgumentError(f"input {spec['name']!r} must have dtype {spec['dtype']}, "
                                    f"got {arr.dtype}")
            if tuple(arr.shape) != tuple(spec["shape"]):
                raise ArgumentError(f"input {spec['name']!r} must have shape "
                                    f"{tuple(spec['shape'])}, got {tuple(arr.shape)}")
            if not (arr.flags.c_contiguous and arr.flags.aligned):
                arr = np.require(arr, requirements=["C", "A"])  # a copy
            arrays.append(arr)
        return arrays

    def profile(self, inputs, repeat: int = 20, warmup: int = 3):
        """Time each kernel on its own (see dlc.runtime.profile): ``inputs`` as ``run``
        takes them (a dict, a list, or one array); ``repeat`` timed runs after ``warmup``."""
        from dlc.runtime.profile import profile_plan

        for name, value, low in (("repeat", repeat, 1), ("warmup", warmup, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ArgumentError(f"{name} must be an integer of at least {low}, got "
                                    f"{value!r}")
        arrays = self.bind_inputs((inputs,), {})
        outputs = [np.empty(tuple(o["shape"]), dtype=dt)
                   for o, dt in zip(self.outputs, self._out_dtypes)]
        arena = self._take_arena()
        try:
            pointers = ([a.ctypes.data for a in arrays], [o.ctypes.data for o in outputs],
                        (arena.ctypes.data + 63) // 64 * 64, self.weights.ctypes.data)
            if self.module is not None:
                before_call(self.module)
            return profile_plan(self.module, self.plan, pointers, repeat, warmup)
        finally:
            self._give_arena(arena)

    def run(self, *args, **kwargs) -> list:
        inputs = self.bind_inputs(args, kwargs)
        outputs = [np.empty(tuple(o["shape"]), dtype=dt)
                   for o, dt in zip(self.outputs, self._out_dtypes)]
        if self._entry is not None:
            arena = self._take_arena()
            try:
                base = arena.ctypes.data
                aligned = (base + 63) // 64 * 64
                in_ptrs = (ctypes.c_void_p * max(len(inputs), 1))(
                    *[a.ctypes.data for a in inputs])
                out_ptrs = (ctypes.c_void_p * max(len(outputs), 1))(
                    *[o.ctypes.data for o in outputs])
                before_call(self.module)
                status = self._entry(in_ptrs, out_ptrs, aligned, self.weights.ctypes.data)
            finally:
                self._give_arena(arena)
            if status != 0:
                raise DlcError("the compiled model failed: out of memory for scratch buffers")
        for index, source in self.plan.get("copies", []):
            kind, where = source
            if kind == "constant":
                outputs[index][...] = self.constants[where]
            elif kind == "input":
                outputs[index][...] = inputs[where]
            elif kind == "output":
                outputs[index][...] = outputs[where]
            else:
                raise DlcError(f"unsupported output source {source}")
        return outputs
