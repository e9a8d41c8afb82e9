"""The child side of measurement: what runs inside the build and measuring processes.

Both kinds of process are started with multiprocessing's "spawn" method by
:mod:`dlc.autotune.measure`, so none inherits the parent's LLVM or OpenMP state. This
module imports only the standard library at the top: the measuring process sets its thread
counts (OpenMP's for the kernels, one thread for NumPy's BLAS) before NumPy or any kernel
library loads, then loads kernels through ``dlc.runtime``, never LLVM.

Measuring process protocol (one ``multiprocessing`` Connection): the child sends
``{"ready": pid}`` once started, then answers each request dict (see :func:`run_request`)
with one reply dict; ``None`` asks it to exit.
"""

from __future__ import annotations

import gc
import os
import signal
import time
import traceback

# Reply keys: "seconds" (list), "error" (an ERROR_CLASSES name or None), "message" (str);
# or "raise" (an exception class name in dlc.errors) and "message" for a caller's mistake.


def serve(conn, threads: int) -> None:
    """Main loop of the measuring process: load, check and time one kernel per request."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # Before NumPy loads OpenBLAS and a kernel library brings in libgomp: both read these
    # when they load.
    os.environ.update(OMP_NUM_THREADS=str(threads), DLC_NUM_THREADS=str(threads),
                      OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    import dlc.autotune.verify  # noqa: F401  (NumPy; imported now, not timed per request)
    import dlc.runtime.module  # noqa: F401

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
        try:
            conn.send(reply)
        except OSError:
            return
        del request, reply
        gc.collect()  # a Module and its Kernels refer to each other: unload the library now


def run_request(request: dict, threads: int) -> dict:
    """Load ``request["library"]``, run its kernel once on NaN-filled outputs, compare them
    with ``request["reference"]`` (if any), then time warm-ups and repeats.

    Request keys: library, metadata, function, inputs, reference, slow_after, warmup,
    min_repeats, min_seconds, max_repeats, max_seconds (the wall-time budget for all runs),
    keep_outputs (send the first run's outputs back).
    """
    from dlc.autotune.verify import compare_outputs, filled_output
    from dlc.errors import ArgumentError, DlcError
    from dlc.runtime.module import Module

    start = time.perf_counter()
    try:
        module = Module(request["library"], request["metadata"])
        module.set_num_threads(threads)
        kernel = module.get_function(request["function"])
        outputs = [filled_output(p) for p in kernel.params if p.get("output")]
        inputs = iter(request["inputs"])
        args = [next(inputs) if not p.get("output") else None for p in kernel.params]
        out = iter(outputs)
        args = [a if a is not None else next(out) for a in args]
        first = _timed(kernel, args)  # checked call: raises ArgumentError on bad arrays
    except ArgumentError as err:
        return {"raise": "ArgumentError", "message": str(err)}
    except DlcError as err:
        return {"seconds": [], "error": "runtime_crash", "message": one_line(err)}
    # later runs write the same arrays again: keep what the checked run wrote
    first_outputs = [o.copy() for o in outputs] if request.get("keep_outputs") else None
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
    reply = {"seconds": times, "error": None, "message": ""}
    if request.get("keep_outputs"):
        reply["outputs"] = first_outputs
    return reply


def _timed(kernel, args) -> float:
    t = time.perf_counter()
    kernel(*args)
    return time.perf_counter() - t


def _repeat(kernel, addresses: list, first: float, start: float, request: dict) -> list:
    """Warm-ups after the first (checked) run, then timed runs until there are
    ``min_repeats`` of them summing to ``min_seconds``, at most ``max_repeats``, and never
    past the ``max_seconds`` budget (counted from the request's arrival). With
    ``flush_bytes``, a buffer that large is rewritten before every run (outside its time),
    so each run starts with the data it reads out of the caches, as in a whole model."""
    from dlc.errors import DlcError

    def call() -> float:
        t = time.perf_counter()
        status = kernel.call_unchecked(*addresses)
        elapsed = time.perf_counter() - t
        if status != 0:
            raise DlcError(f"kernel returned status {status} (out of memory for its scratch "
                           "buffers)")
        return elapsed

    flush = request.get("flush_bytes") or 0
    if flush:  # cold caches: every run first overwrites a buffer larger than the caches
        import numpy as np

        scratch = np.zeros(flush, np.uint8)

        def timed() -> float:
            scratch[:] += 1  # not timed
            return call()
    else:
        timed = call
    last = first
    budget = request["max_seconds"]
    for _ in range(request["warmup"] - 1):
        if time.perf_counter() - start + last > budget:
            break
        last = timed()
    times: list[float] = []
    while len(times) < request["max_repeats"]:
        if len(times) >= request["min_repeats"] and sum(times) >= request["min_seconds"]:
            break
        if time.perf_counter() - start + last > budget:
            break
        last = timed()
        times.append(last)
    return times


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` (plus where, for errors that are not dlc's)."""
    from dlc.errors import DlcError

    text = str(err).strip().splitlines()
    line = type(err).__name__ + (f": {text[0]}" if text else "")
    if not isinstance(err, DlcError):
        frames = traceback.extract_tb(err.__traceback__)
        if frames:
            line += f" (at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno})"
    return line


# Build processes -------------------------------------------------------------------------
def init_build_process() -> None:
    """Initializer of each build process: leave Ctrl-C to the parent; exit when the parent
    dies (a tuner killed with SIGKILL leaves no build process behind); import LLVM now."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    import dlc.build  # noqa: F401
    import dlc.codegen.llvm.machine  # noqa: F401


def _exit_with_parent(poll_seconds: float = 1.0) -> None:
    """A daemon thread that ends this process once its parent is gone (re-parented)."""
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_seconds)
        os._exit(0)

    threading.Thread(target=watch, name="dlc-parent-watch", daemon=True).start()


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
