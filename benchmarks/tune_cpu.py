"""Tune benchmark models on this machine, then time untuned dlc, tuned dlc, onnxruntime
(and numpy for the GEMMs) side by side.

    python benchmarks/tune_cpu.py [--cases resnet18,mobilenet_v2,bert,gemm256,...]
                                  [--time 30m] [--threads 2] [--out DIR]

For every case: the full-size model of benchmarks/models.py is written as ONNX and tuned
with ``dlc tune --time T --threads N`` in its own process (its own log, DIR/CASE.jsonl).
Then ``benchmarks/models_cpu.py`` times the case twice, each in its own process: with the
default schedules and with the log (dlc and onnxruntime, and numpy.matmul for the gemm
cases, interleaved in rounds with idle gaps; medians). Then each library is timed again
ALONE, in a process of its own (no other library's threads in it): ``--alone-rounds``
rounds of onnxruntime, default dlc, tuned dlc (and numpy), each process warming up for
0.5 s and taking the median of ~2 s of calls; the "alone" columns give the median of the
rounds' medians. The table gives the latencies, the
ratios to onnxruntime (and numpy) and, from the log, the share of the final tuned speed
reached within the first third of the tuning time (the model's estimated latency, the sum
of its kernels' best medians, at one third of the run against at its end).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import models  # noqa: E402 - benchmarks/ is not a package

DEFAULT_CASES = ["gemm256", "gemm512", "gemm1024", "gemm2048", "resnet18", "mobilenet_v2",
                 "bert"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=",".join(DEFAULT_CASES))
    p.add_argument("--time", default="30m", help="tuning time per case (default 30m)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", help="directory for the models and logs (default: a new one)")
    p.add_argument("--skip-tuning", action="store_true",
                   help="time with the logs already in --out")
    p.add_argument("--alone-rounds", type=int, default=3,
                   help="rounds of one-library-per-process timing (0: none; default 3)")
    args = p.parse_args(argv)
    args.cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in args.cases if c not in models.CASES]
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}")
    args.out = args.out or tempfile.mkdtemp(prefix="dlc_tune_bench_")
    os.makedirs(args.out, exist_ok=True)
    return args


def tune_case(name: str, args) -> tuple[str, str, float]:
    path = os.path.join(args.out, f"{name}.onnx")
    log = os.path.join(args.out, f"{name}.jsonl")
    with open(path, "wb") as f:
        f.write(models.CASES[name][0]().SerializeToString())
    start = time.perf_counter()
    if not args.skip_tuning:
        subprocess.run([sys.executable, "-m", "dlc", "tune", path, "--log", log, "--time",
                        args.time, "--threads", str(args.threads)], check=True,
                       stdout=subprocess.DEVNULL)
    return path, log, time.perf_counter() - start


def time_case(name: str, args, log: str | None) -> dict:
    out = os.path.join(args.out, f"{name}.{'tuned' if log else 'default'}.json")
    cmd = [sys.executable, os.path.join(HERE, "models_cpu.py"), "--cases", name, "--threads",
           str(args.threads), "--json", out]
    if log:
        cmd += ["--tuning-log", log]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return json.load(f)["rows"][0]


ALONE = """
import sys, time, json
import numpy as np
sys.path.insert(0, {here!r})
import models
kind, name, log, threads = {kind!r}, {name!r}, {log!r}, {threads}
model = models.CASES[name][0]()
feeds = models.random_inputs(model)
if kind == "ort":
    sess = models.ort_session(model, threads)
    fn = lambda: sess.run(None, feeds)
elif kind == "numpy":
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads, user_api="blas")
    a, b = feeds.values()
    fn = lambda: np.matmul(a, b)
else:
    import dlc
    compiled = dlc.compile(model, tuning_log=log)
    compiled.executor.module.set_num_threads(threads)
    fn = lambda: compiled.run(feeds)
end = time.perf_counter() + 0.5
while time.perf_counter() < end:
    fn()
times, end = [], time.perf_counter() + 2.0
while time.perf_counter() < end or len(times) < 5:
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
print(json.dumps(float(np.median(times))))
"""


def time_alone(name: str, kinds: dict, args) -> dict:
    """kind -> median ms over ``--alone-rounds`` processes, each library alone in its own
    (``kinds``: kind -> tuning log or None)."""
    import statistics

    medians: dict = {kind: [] for kind in kinds}
    for _ in range(args.alone_rounds):
        for kind, log in kinds.items():
            code = ALONE.format(here=HERE, kind=kind, name=name, log=log,
                                threads=args.threads)
            out = subprocess.run([sys.executable, "-c", code], check=True,
                                 capture_output=True, text=True).stdout
            medians[kind].append(1e3 * json.loads(out.strip().splitlines()[-1]))
            time.sleep(0.1)  # the last process's spinning threads are gone
    return {kind: statistics.median(values) for kind, values in medians.items()}


def first_third_share(log: str) -> float | None:
    """Final estimated latency / estimated latency at one third of the tuning time."""
    from dlc.autotune import report

    records, _ = report.read_records(log)
    summary = report.summarize(records)
    if not summary.models:
        return None
    timeline = [(t, est) for _, t, est in summary.models[0].timeline if est]
    if not timeline:
        return None
    end = timeline[-1][0]
    at_third = [est for t, est in timeline if t <= end / 3]
    return timeline[-1][1] / at_third[-1] if at_third else None


def main(argv=None) -> int:
    args = parse_args(argv)
    from models_cpu import environment

    env = environment()
    print(f"dlc {env['dlc']} tuned for {args.time} per case vs onnxruntime "
          f"{env['onnxruntime']} and numpy {env['numpy']} on {env['cpu']}, {args.threads} "
          f"threads; logs in {args.out}")
    print(f"{'case':14s} {'tune s':>7s} {'ORT ms':>9s} {'default ms':>10s} {'ratio':>6s} "
          f"{'tuned ms':>9s} {'ratio':>6s} {'numpy ms':>9s} {'/numpy':>7s} {'1/3':>5s}")
    for name in args.cases:
        _, log, seconds = tune_case(name, args)
        default, tuned = time_case(name, args, None), time_case(name, args, log)
        share = first_third_share(log)
        numpy_ms = tuned.get("numpy_ms")
        print(f"{name:14s} {seconds:7.0f} {tuned['ort_ms']:9.3f} {default['dlc_ms']:10.3f} "
              f"{default['ratio']:6.2f} {tuned['dlc_ms']:9.3f} {tuned['ratio']:6.2f} "
              + (f"{numpy_ms:9.3f} {tuned['dlc_ms'] / numpy_ms:7.2f} " if numpy_ms else
                 f"{'-':>9s} {'-':>7s} ")
              + (f"{100 * share:4.0f}%" if share else "    -"), flush=True)
        if args.alone_rounds > 0:
            kinds = {"ort": None, "default": None, "tuned": log}
            if name.startswith("gemm"):
                kinds["numpy"] = None
            alone = time_alone(name, kinds, args)
            print(f"{'  alone':14s} {'':7s} {alone['ort']:9.3f} {alone['default']:10.3f} "
                  f"{alone['default'] / alone['ort']:6.2f} {alone['tuned']:9.3f} "
                  f"{alone['tuned'] / alone['ort']:6.2f} "
                  + (f"{alone['numpy']:9.3f} {alone['tuned'] / alone['numpy']:7.2f}"
                     if "numpy" in alone else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
