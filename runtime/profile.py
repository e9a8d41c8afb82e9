"""Where a compiled model's time goes: each kernel of the plan called on its own, in order,
with the pointers the entry function passes it (arena offsets, weights, inputs, outputs),
timed with ``time.perf_counter`` over several runs after warm-up runs. NumPy and ctypes
only.

    profile = model.profile({"x": x}, repeat=20)
    print(profile)

    kernel                    calls    median us    share   GFLOP/s
    k0_add                        1        0.496    27.7%      0.05
    k1_fused_dense_relu_1         1        0.485    27.1%      1.61
    k2_softmax                    1        0.416    23.3%      0.19
    k3_identity                   1        0.391    21.9%         -
    sum of kernels                4        1.788   100.0%      0.50
    entry function, one call               0.781  (kernels one by one: +1.007 us)

Each run calls every kernel in the entry's order (so each reads what the previous ones
wrote, with caches as warm as in a real run), then the entry function once; a kernel's
time is its median over the runs. The sum of the kernels' medians and the entry
function's median differ by the cost of calling kernels one by one from Python (a few
tenths of a microsecond each) and by timing noise.

The calls come from ``plan["calls"]`` (docs/reference/artifact.md); artifacts written
before dlc recorded them load and run, but must be compiled again to be profiled. GFLOP/s
divides each call's floating-point operations (``flops``, the algorithm's count, see
dlc.tir.flops) by its time: "-" where the count is unknown or zero (copies, layout
changes).
"""

from __future__ import annotations

import ctypes
import statistics
import time
from dataclasses import dataclass

from dlc.errors import DlcError


@dataclass(frozen=True)
class CallTime:
    """One kernel call of a run: the graph kernel, the compiled function it calls
    (kernels with the same loop nest share one), its median seconds and its operations."""

    kernel: str
    function: str
    seconds: float
    flops: int | None


@dataclass(frozen=True)
class KernelTime:
    """The calls of one compiled function in a run, together."""

    function: str
    calls: int
    seconds: float  # the sum of the calls' medians
    flops: int | None  # all calls together; None if any call's count is unknown
    share: float  # of the sum of all kernels, from 0 to 1

    @property
    def gflops(self) -> float | None:
        """Billions of floating-point operations per second; None when unknown or zero."""
        if not self.flops or self.seconds <= 0:
            return None
        return self.flops / self.seconds / 1e9


@dataclass(frozen=True)
class Profile:
    """Per-call medians of ``repeat`` runs, and the entry function's median."""

    calls: list
    entry_seconds: float
    repeat: int

    @property
    def total_seconds(self) -> float:
        return sum(c.seconds for c in self.calls)

    def kernels(self) -> list:
        """One KernelTime per compiled function, the slowest first."""
        groups: dict = {}
        for call in self.calls:
            groups.setdefault(call.function, []).append(call)
        total = self.total_seconds
        rows = []
        for function, calls in groups.items():
            seconds = sum(c.seconds for c in calls)
            flops = None if any(c.flops is None for c in calls) else sum(c.flops for c in calls)
            rows.append(KernelTime(function, len(calls), seconds, flops,
                                   seconds / total if total > 0 else 0.0))
        return sorted(rows, key=lambda r: (-r.seconds, r.function))

    def format(self) -> str:
        """A table, the slowest kernel first; then the sum of the kernels and the entry."""
        rows = self.kernels()
        scale, unit = (1e3, "ms") if self.entry_seconds >= 1e-3 else (1e6, "us")
        width = max([len(r.function) for r in rows] + [len("entry function, one call")])
        total = KernelTime("sum of kernels", len(self.calls), self.total_seconds,
                           _sum_flops(self.calls), 1.0 if self.calls else 0.0)
        lines = [f"{'kernel':{width}s}  calls  {'median ' + unit:>11s}  {'share':>7s}  "
                 f"{'GFLOP/s':>8s}"]
        for r in rows + [total]:
            lines.append(f"{r.function:{width}s}  {r.calls:5d}  {r.seconds * scale:11.3f}"
                         f"  {r.share * 100:6.1f}%  {_gflops(r.gflops):>8s}")
        extra = self.total_seconds - self.entry_seconds
        lines.append(f"{'entry function, one call':{width}s}         "
                     f"{self.entry_seconds * scale:11.3f}  (kernels one by one: "
                     f"{extra * scale:+.3f} {unit})")
        return "\n".join(lines)

    __str__ = format


def _sum_flops(calls) -> int | None:
    return None if any(c.flops is None for c in calls) else sum(c.flops for c in calls)


def _gflops(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def check_profilable(plan: dict) -> None:
    """A DlcError unless ``plan`` lists the kernel calls its entry function makes."""
    if plan.get("entry") and "calls" not in plan:
        raise DlcError("this model's plan does not list its kernel calls (it was compiled by "
                       "an older dlc); compile it again ('dlc compile') to profile its "
                       "kernels")


def profile_plan(module, plan: dict, pointers, repeat: int, warmup: int) -> Profile:
    """Time each call of ``plan["calls"]`` and the entry function. ``pointers`` holds the
    addresses the entry takes: a list per input and output, the arena and weights bases."""
    inputs, outputs, arena, weights = pointers
    check_profilable(plan)
    if not plan.get("entry"):
        return Profile([], 0.0, repeat)
    names = {f["symbol"]: f["name"] for f in module.metadata["functions"]}
    bases = {"input": inputs, "output": outputs, "arena": arena, "weights": weights}
    bound = []
    for call in plan["calls"]:
        fn = module.native(call["symbol"])
        fn.restype = ctypes.c_int32
        fn.argtypes = [ctypes.c_void_p] * len(call["args"])
        addresses = [bases[kind][at] if kind in ("input", "output") else bases[kind] + at
                     for kind, at in call["args"]]
        bound.append((fn, addresses))
    entry = module.native(plan["entry"])
    entry.restype = ctypes.c_int32
    entry.argtypes = [ctypes.c_void_p] * 4
    tables = [(ctypes.c_void_p * max(len(p), 1))(*p) for p in (inputs, outputs)]
    entry_args = (*tables, arena, weights)
    times: list = [[] for _ in bound]
    entry_times = []
    clock = time.perf_counter
    for run in range(warmup + repeat):
        for k, (fn, addresses) in enumerate(bound):
            start = clock()
            status = fn(*addresses)
            elapsed = clock() - start
            if status != 0:
                raise DlcError(f"kernel {plan['calls'][k]['kernel']} failed: out of memory "
                               "for its scratch buffers")
            if run >= warmup:
                times[k].append(elapsed)
        start = clock()
        status = entry(*entry_args)
        elapsed = clock() - start
        if status != 0:
            raise DlcError("the compiled model failed: out of memory for scratch buffers")
        if run >= warmup:
            entry_times.append(elapsed)
    calls = [CallTime(call["kernel"], names.get(call["symbol"], call["symbol"]),
                      statistics.median(t), call.get("flops"))
             for call, t in zip(plan["calls"], times)]
    return Profile(calls, statistics.median(entry_times), repeat)
