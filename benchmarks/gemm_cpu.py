"""GEMM on the CPU: dlc's naive and hand-written schedules against numpy.matmul.

    python benchmarks/gemm_cpu.py [--sizes 256,512,1024,2048] [--threads 1,2] [--repeat 10]

For every size (M = N = K) and thread count it prints the GFLOP/s (2*M*N*K / median time)
of ``C = A @ B`` in float32 computed by

* naive: dlc's default schedule (three plain serial loops), timed once per size (with the
         first thread count; it runs on one thread whatever the count) and, above n = 512,
         from a single run (one takes seconds), up to ``--naive-max``;
* dlc:   ``dlc.schedules.cpu.gemm.gemm_schedule`` (packing, cache and register blocking,
         vectorized and parallel);
* numpy: numpy.matmul (its BLAS),

and the ratio dlc / numpy. Results are checked against numpy before timing; each is then timed
in a block of runs after a warm-up (not interleaved: the idle threads of one library's
thread pool spin for a while after each call and would slow the next one down).

numpy's BLAS threads are set with threadpoolctl when it is installed; otherwise every thread
count runs in a child process started with OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, ...
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

# OpenBLAS's and libgomp's worker threads spin for a while after a call: a runner timed
# right after another would share its cores with them.
IDLE_SECONDS = 0.3
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                         "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="256,512,1024,2048",
                   help="comma-separated M = N = K (default: %(default)s)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts "
                   "(default: %(default)s)")
    p.add_argument("--repeat", type=int, default=10,
                   help="timed runs per measurement, after one warm-up (default: %(default)s)")
    p.add_argument("--naive-max", type=int, default=2048,
                   help="largest size at which the naive schedule is timed (default: "
                   "%(default)s; 2048 takes about a minute)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--no-naive", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",") if x]
    args.threads = [int(x) for x in args.threads.split(",") if x]
    if args.repeat < 1 or not args.sizes or not args.threads:
        p.error("--sizes, --threads and --repeat need positive values")
    return args


def build(n: int, which: str):
    import dlc
    from dlc.schedules.cpu.gemm import gemm_schedule, naive_schedule

    make = naive_schedule if which == "naive" else gemm_schedule
    sch, _ = make(n, n, n)
    return dlc.build(sch)


def measure(n: int, threads: int, repeat: int, naive_max: int, naive: bool = True) -> dict:
    """GFLOP/s of naive (when ``naive``), dlc and numpy at one size with ``threads``
    threads."""
    import numpy as np

    rng = np.random.default_rng(n)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    ref = a @ b
    runners = {}
    for which in ("naive", "dlc"):
        if which == "naive" and (not naive or n > naive_max):
            continue
        mod = build(n, which)
        mod.set_num_threads(threads)
        c = np.empty((n, n), np.float32)
        mod(a, b, c)
        if not np.allclose(c, ref, rtol=1e-4, atol=1e-4):
            err = float(np.abs(c - ref).max())
            raise SystemExit(f"{which} result differs from numpy at size {n} (max error {err})")
        runners[which] = (lambda m=mod, c=c: m(a, b, c))
    out = np.empty((n, n), np.float32)
    runners["numpy"] = lambda: np.matmul(a, b, out=out)
    times = {}
    for name, run in runners.items():
        time.sleep(IDLE_SECONDS)  # let the previous runner's idle threads stop spinning
        slow = name == "naive" and n > 512  # seconds per run, warmed up by the check
        if not slow:
            run()  # warm-up
        times[name] = []
        for _ in range(1 if slow else repeat):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    flop = 2.0 * n * n * n
    row = {"size": n, "threads": threads}
    for name in ("naive", "dlc", "numpy"):
        row[name] = flop / float(np.median(times[name])) / 1e9 if name in times else None
    return row


def blas_threads(threads: int):
    """A context that limits numpy's BLAS to ``threads`` (threadpoolctl), or None."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def run_in_child(args, threads: int, naive: bool) -> list[dict]:
    env = dict(os.environ, DLC_NUM_THREADS=str(threads))
    env.update({name: str(threads) for name in BLAS_THREAD_VARIABLES})
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--threads", str(threads),
           "--sizes", ",".join(map(str, args.sizes)), "--repeat", str(args.repeat),
           "--naive-max", str(args.naive_max)] + ([] if naive else ["--no-naive"])
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark worker for {threads} thread(s) failed")
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


class CpuUsage:
    """CPU time used by other programs since creation (Linux /proc/stat), in CPUs."""

    def __init__(self):
        self.start = self.sample()

    @staticmethod
    def sample():
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        mine = sum(os.times()[:4])
        return busy / os.sysconf("SC_CLK_TCK"), mine, time.perf_counter()

    def others(self) -> float | None:
        end = self.sample()
        if self.start is None or end is None:
            return None
        busy, mine, wall = (e - s for e, s in zip(end, self.start))
        return max(0.0, busy - mine) / wall


def fmt(value, width=8, digits=1) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def print_table(rows: list[dict], repeat: int, naive_max: int, others: float | None) -> None:
    import numpy as np

    from dlc.codegen.llvm.machine import host_cpu_name

    blas = np.show_config(mode="dicts").get("Build Dependencies", {}).get("blas", {})
    print(f"float32 GEMM, C[n, n] = A[n, n] @ B[n, n]; GFLOP/s = 2 n^3 / median of {repeat} "
          f"runs; cpu {host_cpu_name()}, numpy {np.__version__} with "
          f"{blas.get('name', '?')} {blas.get('version', '')}".rstrip())
    naive_by_size = {r["size"]: r["naive"] for r in rows if r["naive"] is not None}
    print(f"{'size':>6} {'threads':>8} {'naive':>18} {'dlc':>8} {'numpy':>8} {'dlc/numpy':>10}")
    for r in sorted(rows, key=lambda r: (r["size"], r["threads"])):
        value = r["naive"] if r["naive"] is not None else naive_by_size.get(r["size"])
        naive = fmt(value, 18) if value is not None else f"{'skipped (too slow)':>18}"
        print(f"{r['size']:>6} {r['threads']:>8} {naive} {fmt(r['dlc'])} {fmt(r['numpy'])} "
              f"{fmt(r['dlc'] / r['numpy'], 10, 2)}")
    print(f"naive (serial loops, so one figure per size for every thread count; a single "
          f"run above n = 512) is timed up to n = {naive_max} (--naive-max); dlc's schedule is "
          "dlc.schedules.cpu.gemm.gemm_schedule")
    if others is not None:
        print(f"other programs kept {others:.2f} CPUs busy on average during the run"
              + (": the numbers, above all with 2 threads, are unreliable" if others > 0.2
                 else ""))

def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        for threads in args.threads:
            for n in args.sizes:
                print(json.dumps(measure(n, threads, args.repeat, args.naive_max,
                                         not args.no_naive)), flush=True)
        return
    rows = []
    usage = CpuUsage()
    for threads in args.threads:
        naive = threads == args.threads[0]  # serial loops: once per size is enough
        limits = blas_threads(threads)
        if limits is None:
            rows += run_in_child(args, threads, naive)
            continue
        with limits:
            rows += [measure(n, threads, args.repeat, args.naive_max, naive)
                     for n in args.sizes]
    print_table(rows, args.repeat, args.naive_max, usage.others())


if __name__ == "__main__":
    main()
