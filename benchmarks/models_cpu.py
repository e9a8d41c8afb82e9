"""dlc against onnxruntime on the benchmark models of benchmarks/models.py, on the CPU.

    python benchmarks/models_cpu.py [--cases resnet18,bert,...|all] [--threads 1,2]
                                    [--repeat 10] [--budget 20] [--opt-level 3] [--json FILE]
                                    [--check-targets] [--tuning-log LOG.jsonl]

For every case: build the full-size model (random weights), compile it with ``dlc.compile``
(the compile time is recorded), and for each thread count run it once with dlc and check the
output against onnxruntime's (``np.allclose`` with rtol 1e-3 and atol 1e-4 * max|reference|;
the max abs difference is printed; a wrong result fails the case loudly and the script exits
with 1). Then dlc (``compiled.run``, threads set with ``module.set_num_threads``) and
onnxruntime (ORT_ENABLE_ALL, intra_op_num_threads = threads, inter_op_num_threads = 1) are
timed in interleaved rounds, so that both see the same machine noise:

* before its turn in a round, each library idles for 60 ms (onnxruntime's and libgomp's
  idle worker threads spin for 40-50 ms after a call and would share the cores with the
  other library's next call) and makes one untimed call (which wakes its own threads);
* calls shorter than 20 ms are then timed in blocks of ~20 ms, longer ones once per round,
  alternating which library goes first;
* ``--repeat`` rounds at most, fewer when a case would take more than ``--budget`` seconds per
  thread count, but never fewer than 3; a dlc check call longer than 1 s counts as a sample.

The table gives the median latency of each, the ratio dlc/ORT (lower is better; < 1 means dlc
is faster) and the compile time, then the geometric mean of dlc/ORT at 2 threads and the
targets of the untuned defaults (issue 13): every case within 1.3x of onnxruntime at 2
threads, the geometric mean within 1.1x, ResNet-18 compiled in under 20 s.
``--check-targets`` exits with 1 when a target is missed. ``--tuning-log`` compiles with the
schedules of a tuning log (``dlc tune``). The ``gemm*`` cases (square float32 products of two
inputs) also time ``numpy.matmul`` in the same rounds (column "numpy ms", ratio dlc/numpy).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402 - benchmarks/ is not a package

DEFAULT_CASES = ["resnet18", "mobilenet_v2", "bert", "mlp", "conv3x3", "conv1x1",
                 "depthwise3x3", "matmul", "softmax", "layernorm"]
SINGLE_OPS = {"conv3x3", "conv1x1", "depthwise3x3", "matmul", "softmax", "layernorm"}
RTOL, ATOL_SCALE = 1e-3, 1e-4
SHORT_CALL_S = 0.02      # calls shorter than this are timed in blocks
PAUSE_S = 0.06           # idle time before each library's turn in a round
MIN_ROUNDS = 3
TARGET_RATIO, TARGET_GEOMEAN, TARGET_COMPILE_S = 1.3, 1.1, 20.0


class WrongResult(Exception):
    """dlc's output does not match onnxruntime's."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=",".join(DEFAULT_CASES),
                   help="comma-separated cases, or 'all' (also: "
                   + ", ".join(sorted(set(models.CASES) - set(DEFAULT_CASES))) + ")")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts "
                   "(default: %(default)s)")
    p.add_argument("--repeat", type=int, default=10,
                   help="timing rounds per case and thread count (default: %(default)s)")
    p.add_argument("--budget", type=float, default=20.0,
                   help="seconds of timing per case and thread count before rounds are cut "
                   "(never below 3 rounds; default: %(default)s)")
    p.add_argument("--opt-level", type=int, choices=range(4), default=3)
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--check-targets", action="store_true",
                   help="exit with 1 when a latency or compile-time target is missed")
    p.add_argument("--tuning-log", metavar="LOG.jsonl",
                   help="compile with the schedules of this tuning log")
    args = p.parse_args(argv)
    args.cases = list(models.CASES) if args.cases == "all" else \
        [c for c in args.cases.split(",") if c]
    unknown = [c for c in args.cases if c not in models.CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(models.CASES)}")
    args.threads = [int(t) for t in args.threads.split(",") if t]
    if args.repeat < 1 or not args.threads or min(args.threads) < 1:
        p.error("--threads and --repeat need positive values")
    return args


# -- timing ---------------------------------------------------------------------------------
def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def warm_up(fn, first: float) -> float:
    """Call ``fn`` for ~0.1 s (at least twice) unless its first call took over a second;
    returns the estimated time of one call (the fastest of the last few)."""
    if first > 1.0:
        return first
    times = [timed(fn) for _ in range(max(2, min(200, math.ceil(0.1 / max(first, 1e-6)))))]
    return min(times[-3:])


def measure(runners: dict, estimates: dict, args) -> dict:
    """Interleaved timing rounds of every runner; returns each one's list of samples."""
    per_round = sum(PAUSE_S + t + max(t, SHORT_CALL_S) for t in estimates.values())
    rounds = max(MIN_ROUNDS, min(args.repeat, int(args.budget / per_round)))
    samples = {name: [] for name in runners}
    order = list(runners)
    for r in range(rounds):
        for name in order if r % 2 == 0 else order[::-1]:
            fn, t = runners[name], estimates[name]
            time.sleep(PAUSE_S)
            fn()
            if t < SHORT_CALL_S:
                samples[name].extend(timed(fn) for _ in range(max(1, int(SHORT_CALL_S / t))))
            else:
                samples[name].append(timed(fn))
    return samples


# -- one case -------------------------------------------------------------------------------
def check_close(got, want, what: str) -> float:
    """The max abs difference; raises WrongResult when the outputs are not close."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        raise WrongResult(f"{what}: dlc gives {got.dtype}{list(got.shape)}, onnxruntime "
                          f"{want.dtype}{list(want.shape)}")
    if not np.isfinite(got).all():
        raise WrongResult(f"{what}: dlc's output has {int((~np.isfinite(got)).sum())} "
                          "non-finite values")
    diff = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
    atol = ATOL_SCALE * max(1.0, float(np.max(np.abs(want))) if want.size else 0.0)
    if not np.allclose(got, want, rtol=RTOL, atol=atol):
        bad = int((~np.isclose(got, want, rtol=RTOL, atol=atol)).sum())
        raise WrongResult(f"{what}: dlc's output differs from onnxruntime's at {bad} of "
                          f"{got.size} elements (max abs diff {diff:.3g}, rtol {RTOL}, atol "
                          f"{atol:.3g})")
    return diff


def bench_case(name: str, args, log) -> list:
    """Rows (one per thread count) for one case; raises on compile errors or wrong output."""
    import dlc

    model = models.CASES[name][0]()
    feeds = models.random_inputs(model)
    log(f"{name}: compiling")
    start = time.perf_counter()
    compiled = dlc.compile(model, opt_level=args.opt_level, tuning_log=args.tuning_log)
    compile_s = time.perf_counter() - start
    ort_ref = None
    rows = []
    for threads in args.threads:
        log(f"{name}: {threads} thread(s)")
        compiled.executor.module.set_num_threads(threads)
        sess = models.ort_session(model, threads)
        run_dlc = functools.partial(compiled.run, feeds)
        run_ort = functools.partial(sess.run, None, feeds)
        start = time.perf_counter()
        got = run_dlc()
        t_dlc = time.perf_counter() - start
        start = time.perf_counter()
        want = run_ort()
        t_ort = time.perf_counter() - start
        ort_ref = want if ort_ref is None else ort_ref
        diff = max(check_close(g, w, f"{name}, output {k}, {threads} thread(s)")
                   for k, (g, w) in enumerate(zip(got, ort_ref)))
        first_dlc = t_dlc
        t_dlc, t_ort = warm_up(run_dlc, t_dlc), warm_up(run_ort, t_ort)
        runners, estimates = {"dlc": run_dlc, "ort": run_ort}, {"dlc": t_dlc, "ort": t_ort}
        if name.startswith("gemm"):
            runners["numpy"] = _numpy_matmul(feeds, threads)
            estimates["numpy"] = warm_up(runners["numpy"], timed(runners["numpy"]))
        samples = measure(runners, estimates, args)
        if first_dlc > 1.0:
            samples["dlc"].append(first_dlc)
        dlc_s, ort_s = float(np.median(samples["dlc"])), float(np.median(samples["ort"]))
        rows.append(dict(case=name, threads=threads, dlc_ms=dlc_s * 1e3, ort_ms=ort_s * 1e3,
                         ratio=dlc_s / ort_s, compile_s=compile_s, max_abs_diff=diff,
                         samples=len(samples["dlc"]), ort_samples=len(samples["ort"]),
                         kernels=len(compiled.kernels),
                         numpy_ms=(float(np.median(samples["numpy"])) * 1e3
                                   if "numpy" in samples else None)))
    return rows


def _numpy_matmul(feeds: dict, threads: int):
    """numpy.matmul of the two inputs with its BLAS limited to ``threads`` threads (set
    here, once: entering threadpoolctl's context costs about a millisecond per call)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads, user_api="blas")
    a, b = feeds.values()
    return functools.partial(np.matmul, a, b)


# -- report ---------------------------------------------------------------------------------
HEADER = (f"{'case':14s} {'threads':>7s} {'dlc ms':>10s} {'ORT ms':>9s} {'dlc/ORT':>8s} "
          f"{'compile s':>9s} {'max|diff|':>9s} {'n':>4s}")


def format_row(row: dict) -> str:
    text = (f"{row['case']:14s} {row['threads']:7d} {row['dlc_ms']:10.3f} {row['ort_ms']:9.3f} "
            f"{row['ratio']:8.2f} {row['compile_s']:9.2f} {row['max_abs_diff']:9.2g} "
            f"{row['samples']:4d}")
    if row.get("numpy_ms"):
        text += (f"   numpy {row['numpy_ms']:.3f} ms, dlc/numpy "
                 f"{row['dlc_ms'] / row['numpy_ms']:.2f}")
    return text


def geomean(values) -> float:
    values = list(values)
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def summarize(rows: list, failures: dict, threads: int = 2) -> tuple[list, list]:
    """Summary lines and the list of missed targets."""
    at = [r for r in rows if r["threads"] == threads]
    lines, missed = [], []
    if at:
        g = geomean(r["ratio"] for r in at)
        models_only = [r["ratio"] for r in at if r["case"] not in SINGLE_OPS]
        lines.append(f"geometric mean of dlc/ORT at {threads} threads: {g:.2f}x over {len(at)} "
                     f"case(s) (target <= {TARGET_GEOMEAN}x)"
                     + (f"; models only: {geomean(models_only):.2f}x" if models_only else ""))
        if g > TARGET_GEOMEAN:
            missed.append(f"geometric mean {g:.2f}x > {TARGET_GEOMEAN}x")
        slow = [f"{r['case']} {r['ratio']:.2f}x" for r in at if r["ratio"] > TARGET_RATIO]
        lines.append(f"cases over {TARGET_RATIO}x at {threads} threads: {len(slow)} of {len(at)}"
                     + (f" ({', '.join(slow)})" if slow else ""))
        missed += [f"{s} > {TARGET_RATIO}x" for s in slow]
    else:
        lines.append(f"no case ran at {threads} threads: no geometric mean")
    for r in rows:
        if r["case"] == "resnet18" and r["threads"] == rows[0]["threads"]:
            ok = r["compile_s"] < TARGET_COMPILE_S
            lines.append(f"resnet18 compile time: {r['compile_s']:.2f} s "
                         f"(target < {TARGET_COMPILE_S:.0f} s: {'met' if ok else 'MISSED'})")
            if not ok:
                missed.append(f"resnet18 compile {r['compile_s']:.1f} s")
    for name, err in failures.items():
        lines.append(f"FAILED {name}: {err}")
    return lines, missed


def environment() -> dict:
    import onnxruntime

    import dlc

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"dlc": dlc.__version__, "onnxruntime": onnxruntime.__version__,
            "numpy": np.__version__, "cpu": cpu, "cpus": os.cpu_count(),
            "python": platform.python_version()}


def main(argv=None) -> int:
    args = parse_args(argv)
    log = lambda msg: print(f"  [{msg}]", file=sys.stderr, flush=True)  # noqa: E731
    env = environment()
    print(f"dlc {env['dlc']} (opt_level {args.opt_level}) vs onnxruntime {env['onnxruntime']} "
          f"(ORT_ENABLE_ALL) on {env['cpu']}, {env['cpus']} CPUs; median latency, "
          f"up to {args.repeat} rounds / {args.budget:g} s per case and thread count")
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.1f} on {env['cpus']} CPUs"
          + ("  (WARNING: other processes compete for the CPUs; multi-threaded latencies are "
             "unreliable)" if load > 1.0 else ""))
    print(HEADER, flush=True)
    rows, failures = [], {}
    start = time.perf_counter()
    for name in args.cases:
        try:
            case_rows = bench_case(name, args, log)
        except WrongResult as err:
            failures[name] = f"WRONG RESULT: {err}"
            print(f"{name:14s} WRONG RESULT: {err}", flush=True)
            continue
        except Exception as err:  # noqa: BLE001 - reported, and the run goes on
            failures[name] = f"{type(err).__name__}: {err}"
            print(f"{name:14s} FAILED: {type(err).__name__}: {err}", flush=True)
            continue
        for row in case_rows:
            print(format_row(row), flush=True)
        rows += case_rows
    lines, missed = summarize(rows, failures, threads=max(args.threads))
    print("\n".join(lines))
    print(f"total time {time.perf_counter() - start:.0f} s; load average at the end "
          f"{os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"environment": env, "opt_level": args.opt_level, "rows": rows,
                       "failures": failures, "missed_targets": missed}, f, indent=1)
    if failures:
        return 1
    return 1 if args.check_targets and missed else 0


if __name__ == "__main__":
    sys.exit(main())
