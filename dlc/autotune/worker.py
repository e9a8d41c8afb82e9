"""The child side of measurement: what runs inside the build and measuring processes.

Both kinds of process are started with multiprocessing's "spawn" method by
:mod:`dlc.autotune.measure`, so none inherits the parent's LLVM or OpenMP state. This
module imports only NumPy and the standard library at the top: the measuring process
loads kernels through ``dlc.runtime`` and never imports LLVM.

Measuring process protocol (one ``multiprocessing`` Connection): the child sends
``{"ready": pid}`` once started, then answers each request dict (see :func:`run_request`)
with one reply dict; ``None`` asks it to exit.
"""

from __future__ import annotations

import math
import os
import signal
import time
import traceback

import numpy as np

# Reply keys: "seconds" (list), "error" (an ERROR_CLASSES name or None), "message" (str);
# or "raise" (an exception class name in dlc.errors) and "message" for a caller's mistake.


def serve(conn, threads: int) -> None:
    """Main loop of the measuring process: load, check and time one kernel per request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # Before any library brings in libgomp, which reads these when it loads.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["DLC_NUM_THREADS"] = str(threads)
    import dlc.runtime.module  # noqa: F401  (imported before "ready": not timed per request)

    conn.send({"ready": os.getpid()})
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if request is None:
            return
        try:
            reply = run_request(request, threads)
        except Exception as err:  # noqa: BLE001 - reported, and the process stays usable
            reply = {"seconds": [], "error": "runtime_crash", "message": one_line(err)}
        conn.send(reply)


def run_request(request: dict, threads: int) -> dict:
    """Load ``request["library"]``, run its kernel once on NaN-filled outputs, compare them
    with ``request["reference"]`` (if any), then time warm-ups and repeats.

    Request keys: library, metadata, function, inputs, reference, slow_after, warmup,
    min_repeats, min_seconds, max_repeats, max_seconds (the wall-time budget for all runs).
    """
    from dlc.errors import ArgumentError, DlcError
    from dlc.runtime.module import Module

    start = time.perf_counter()
    try:
        module = Module(request["library"], request["metadata"])
        module.set_num_threads(threads)
        kernel = module.get_function(request["function"])
        outputs = [_filled(p) for p in kernel.params if p.get("output")]
        inputs = iter(request["inputs"])
        args = [next(inputs) if not p.get("output") else None for p in kernel.params]
        out = iter(outputs)
        args = [a if a is not None else next(out) for a in args]
        first = _timed(kernel, args)  # checked call: raises ArgumentError on bad arrays
    except ArgumentError as err:
        return {"raise": "ArgumentError", "message": str(err)}
    except DlcError as err:
        return {"seconds": [], "error": "runtime_crash", "message": one_line(err)}
    if request["reference"] is not None:
        names = [p["name"] for p in kernel.params if p.get("output")]
        wrong = compare_outputs(outputs, request["reference"], names)
        if wrong:
            return {"seconds": [], "error": "wrong_result", "message": wrong}
    slow_after = request["slow_after"]
    if slow_after is not None and first > slow_after:
        return {"seconds": [first], "error": "stopped_early",
                "message": f"first run took {first:.3g} s, over the limit of {slow_after:.3g} s"}
    addresses = kernel.check(args)
    try:
        times = _repeat(kernel, addresses, first, start, request)
    except DlcError as err:
        return {"seconds": [], "error": "runtime_crash", "message": one_line(err)}
    if not times:
        return {"seconds": [], "error": "timeout",
                "message": f"one run takes {first:.3g} s; the budget of "
                           f"{request['max_seconds']:.3g} s leaves no room for a timed run"}
    return {"seconds": times, "error": None, "message": ""}


def _timed(kernel, args) -> float:
    t = time.perf_counter()
    kernel(*args)
    return time.perf_counter() - t


def _repeat(kernel, addresses: list, first: float, start: float, request: dict) -> list:
    """Warm-ups after the first (checked) run, then timed runs until there are
    ``min_repeats`` of them summing to ``min_seconds``, at most ``max_repeats``, and never
    past the ``max_seconds`` budget (counted from the request's arrival)."""
    from dlc.errors import DlcError

    def call() -> float:
        t = time.perf_counter()
        status = kernel.call_unchecked(*addresses)
        elapsed = time.perf_counter() - t
        if status != 0:
            raise DlcError(f"kernel returned status {status} (out of memory for its scratch "
                           "buffers)")
        return elapsed

    last = first
    budget = request["max_seconds"]
    for _ in range(request["warmup"] - 1):
        if time.perf_counter() - start + last > budget:
            break
        last = call()
    times: list[float] = []
    while len(times) < request["max_repeats"]:
        if len(times) >= request["min_repeats"] and sum(times) >= request["min_seconds"]:
            break
        if time.perf_counter() - start + last > budget:
            break
        last = call()
        times.append(last)
    return times


def _filled(param: dict) -> np.ndarray:
    """A fresh output array that no correct kernel leaves as it is: NaN for floats, bytes
    0xA5 for the rest (not 0 or 1 for bool, an unlikely value for integers)."""
    from dlc.runtime.module import _numpy_dtype

    dtype = _numpy_dtype(param["dtype"])
    shape = tuple(param["shape"])
    if _is_float(dtype):
        return np.full(shape, np.nan, dtype=dtype)
    array = np.empty(shape, dtype=dtype)
    array.view(np.uint8).fill(0xA5)
    return array


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or (dtype.kind == "V" and "float" in dtype.name)


#: Relative tolerance per float dtype (atol is this times the largest finite |reference|).
RTOL = {"float64": 1e-6, "float32": 1e-3, "float16": 1e-2, "bfloat16": 2e-2}
LOW_PRECISION_RTOL = 1e-1  # float8 kinds and others not listed


def compare_outputs(outputs: list, reference: list, names: list) -> str | None:
    """None when every output matches its reference, else a one-line message naming the
    worst element. Floats: within rtol (by dtype, :data:`RTOL`) and atol = rtol x the
    largest finite |reference|, NaN exactly where the reference has NaN; others: exact."""
    if len(outputs) != len(reference):
        return f"{len(outputs)} outputs but {len(reference)} references"
    for out, ref, name in zip(outputs, reference, names):
        ref = np.asarray(ref)
        if ref.shape != out.shape:
            return f"output {name} has shape {out.shape}, the reference {ref.shape}"
        if _is_float(out.dtype):
            message = _compare_floats(out, ref, name)
        else:
            message = _compare_exact(out, ref, name)
        if message:
            return message
    return None


def _compare_floats(out: np.ndarray, ref: np.ndarray, name: str) -> str | None:
    rtol = RTOL.get(out.dtype.name, LOW_PRECISION_RTOL)
    got, want = out.astype(np.float64), ref.astype(np.float64)
    finite = np.isfinite(want)
    scale = float(np.max(np.abs(want[finite]))) if finite.any() else 0.0
    atol = rtol * scale
    close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    with np.errstate(invalid="ignore"):
        error = np.abs(got - want) / (atol + rtol * np.abs(want) + 1e-300)
    error = np.where(close, -1.0, np.nan_to_num(error, nan=np.inf, posinf=np.inf))
    worst = _index(np.argmax(error), out.shape)
    count = int((~close).sum())
    hint = " (never written?)" if math.isnan(got[worst]) and not math.isnan(want[worst]) else ""
    return (f"output {name}{list(worst)} = {got[worst]:.6g}, expected {want[worst]:.6g}"
            f"{hint}; {count} of {out.size} elements differ beyond rtol={rtol:g}, "
            f"atol={atol:.3g}")


def _compare_exact(out: np.ndarray, ref: np.ndarray, name: str) -> str | None:
    if ref.dtype != out.dtype:
        ref = ref.astype(out.dtype)
    # compared as bytes, so that an unwritten bool (0xA5) is not "True"
    got = out.view(np.uint8).reshape(out.shape + (-1,))
    same = (got == ref.view(np.uint8).reshape(ref.shape + (-1,))).all(axis=-1)
    if same.all():
        return None
    worst = _index(np.argmin(same), out.shape)
    count = int((~same).sum())
    unset = got[worst].tobytes() == b"\xa5" * out.itemsize
    value = got[worst][0] if out.dtype == np.bool_ else out[worst]
    return (f"output {name}{list(worst)} = {value}, expected {ref[worst]}"
            f"{' (never written?)' if unset else ''}; {count} of {out.size} elements differ")


def _index(flat, shape: tuple) -> tuple:
    return tuple(int(i) for i in np.unravel_index(int(flat), shape))


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` (plus where, for errors that are not dlc's)."""
    from dlc.errors import DlcError

    text = str(err).strip().splitlines()
    line = f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")
    if not isinstance(err, DlcError):
        frames = traceback.extract_tb(err.__traceback__)
        if frames:
            line += f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})"
    return line


# Build processes -------------------------------------------------------------------------
def init_build_process() -> None:
    """Initializer of each build process: leave Ctrl-C to the parent; import LLVM now."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import dlc.build  # noqa: F401
    import dlc.codegen.llvm.machine  # noqa: F401


def build_one(func, target) -> dict:
    """Compile one PrimFunc: ``{"library", "metadata", "seconds"}`` or, when dlc refuses
    or fails, ``{"error": one line, "seconds"}``."""
    from dlc.build import build_funcs

    start = time.perf_counter()
    try:
        module = build_funcs([func], target)
    except Exception as err:  # noqa: BLE001 - every failure is the candidate's build error
        return {"error": one_line(err), "seconds": time.perf_counter() - start}
    return {"library": module.library_bytes, "metadata": module.metadata,
            "seconds": time.perf_counter() - start}
