"""Model-guided search against random search on tunable GEMM tasks (real measurements).

    python benchmarks/tune_search.py [--shapes 256x256x256,192x512x128] [--trials 48]
        [--batch 8] [--threads 1] [--seed 0] [--no-transfer] [--features-timing]

Every task is a ``C[M, N] = A[M, K] @ B[K, N]`` template written here with ``dlc.te``
and the schedule API (knobs: tile sizes of i, j and k, the order of the outer and of the
inner loops, vectorizing the innermost j loop, unrolling the i tile, a parallel outer
loop when ``--threads`` > 1). Its default configuration is the plain loop nest (i, j, k
untiled), as an untuned template's would be: both searches measure it first. On each
task, with the same number of trials:

* random:  ``RandomSearch`` (the default configuration first, then uniform samples);
* guided:  ``EvolutionarySearch`` with a ``CostModel`` trained on this task's
           measurements as they arrive;
* guided+prior (tasks after the first, unless ``--no-transfer``): the same, with the
           model trained from the start on every measurement of the earlier tasks.

Each candidate is lowered, built with ``dlc.build`` and timed in this process (median of
at least 5 runs and 50 ms after a warm-up; checked against NumPy once). This is a simple
timer for a benchmark: ``dlc tune`` measures through ``dlc.autotune.measure``, whose runner
survives crashing and hanging candidates.

Printed per task and search: the best GFLOP/s found (after all trials and after 16), the
trials needed to reach 90% and 95% of the best speed found by any search of that task
("-": never) and the seconds spent proposing and learning (featurizing, training,
evolving; not measuring), then the cost model's pairwise ranking accuracy on held-out
measurements: a model trained on the guided search's measurements (and the earlier
tasks') ranks the random search's measurements of the same task, which it never saw; a
model trained on the earlier tasks only ranks them too (transfer without a single
measurement of the task). Both objectives of the model (``regression``, the default, and
``rank``) are scored.

Timings on a loaded machine are noisy: compare searches over several ``--seed`` values
before trusting a difference of a few trials.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time

import numpy as np

MIN_RUNS, MIN_SECONDS, MAX_RUNS = 5, 0.05, 200


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", default="256x256x256,192x512x128",
                   help="comma-separated MxNxK GEMM tasks (default: %(default)s)")
    p.add_argument("--trials", type=int, default=48, help="trials per search and task")
    p.add_argument("--batch", type=int, default=8, help="candidates per round")
    p.add_argument("--threads", type=int, default=1, help="threads of the kernels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-transfer", action="store_true",
                   help="skip the guided+prior search of later tasks")
    p.add_argument("--save", metavar="PATH", help="write every trial (configuration, "
                   "GFLOP/s, features) to a JSON file")
    p.add_argument("--features-timing", action="store_true",
                   help="only time feature extraction of a GEMM and a convolution kernel")
    args = p.parse_args(argv)
    args.shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",") if s]
    return args


class GemmTask:
    """A tunable ``C = A @ B``: ``space()``, ``lower(config)``, ``flops``."""

    def __init__(self, M: int, N: int, K: int, threads: int):
        self.M, self.N, self.K, self.threads = M, N, K, threads
        self.name = f"gemm_{M}x{N}x{K}"
        self.flops = 2.0 * M * N * K

    def schedule(self, cfg):
        from dlc import te
        from dlc.tir.schedule import Schedule

        M, N, K = self.M, self.N, self.K
        A = te.placeholder((M, K), "float32", name="A")
        B = te.placeholder((K, N), "float32", name="B")
        k = te.reduce_axis(K, name="k")
        C = te.compute((M, N), lambda i, j: te.sum(A[i, k] * B[k, j], axis=k), name="C")
        sch = Schedule([A, B, C], name=self.name)
        i, j, kk = sch.get_loops(C)
        ti = cfg.knob("tile_i", _upto((1, 2, 4, 8, 16, 32), M), default=1)
        tj = cfg.knob("tile_j", _upto((1, 4, 8, 16, 32, 64, 128), N), default=1)
        tk = cfg.knob("tile_k", _upto((1, 4, 16, 64, 256), K), default=1)
        outer = cfg.knob("outer", ("io jo ko", "io ko jo", "jo io ko", "ko io jo"),
                         default="io jo ko")
        inner = cfg.knob("inner", ("ki ii ji", "ii ki ji", "ii ji ki"), default="ii ji ki")
        vectorize = cfg.knob("vectorize", (False, True), default=False)
        unroll = cfg.knob("unroll", (False, True), default=False)
        parallel = cfg.knob("parallel", (False, True), default=False) \
            if self.threads > 1 else False
        io, ii = sch.split(i, factor=ti)
        jo, ji = sch.split(j, factor=tj)
        ko, ki = sch.split(kk, factor=tk)
        loops = {"io": io, "ii": ii, "jo": jo, "ji": ji, "ko": ko, "ki": ki}
        order = outer.split() + inner.split()
        sch.reorder(*(loops[x] for x in order))
        if vectorize and order[-1] == "ji":
            sch.vectorize(ji)
        if unroll:
            sch.unroll(ii)
        if parallel:
            sch.parallel(loops[order[0]] if order[0] != "ko" else io)
        return sch

    def space(self):
        from dlc.autotune.space import DefaultConfig

        cfg = DefaultConfig()
        self.schedule(cfg)
        return cfg.space

    def lower(self, config: dict):
        from dlc.autotune.space import FixedConfig
        from dlc.tir.lower import lower

        return lower(self.schedule(FixedConfig(config)))


def _upto(choices, extent):
    kept = tuple(c for c in choices if c <= extent)
    return kept or (choices[0],)


class Measurer:
    """Builds and times candidates of one task in this process."""

    def __init__(self, task: GemmTask):
        rng = np.random.default_rng(0)
        self.task = task
        self.a = rng.uniform(-1, 1, (task.M, task.K)).astype(np.float32)
        self.b = rng.uniform(-1, 1, (task.K, task.N)).astype(np.float32)
        self.ref = self.a.astype(np.float64) @ self.b.astype(np.float64)

    def __call__(self, config: dict):
        """``(seconds or None, features or None, error message)``."""
        import dlc
        from dlc.autotune.features import extract
        from dlc.errors import DlcError

        try:
            func = self.task.lower(config)
            features = extract(func)
            mod = dlc.build(func)
        except DlcError as err:
            return None, None, f"build: {err}"
        mod.set_num_threads(self.task.threads)
        c = np.full((self.task.M, self.task.N), np.nan, np.float32)
        mod(self.a, self.b, c)
        if not np.allclose(c, self.ref, rtol=1e-3, atol=1e-3):
            return None, features, "wrong result"
        times, start = [], time.perf_counter()
        while len(times) < MAX_RUNS and (len(times) < MIN_RUNS
                                         or time.perf_counter() - start < MIN_SECONDS):
            t0 = time.perf_counter()
            mod(self.a, self.b, c)
            times.append(time.perf_counter() - t0)
        return statistics.median(times), features, ""


def tune(task, search, measure, trials: int, batch: int) -> list[dict]:
    """Run ``search`` for ``trials`` measurements; the trials in order."""
    from dlc.autotune.search import config_key

    measured: set[str] = set()
    out: list[dict] = []
    while len(out) < trials:
        start = time.perf_counter()
        configs = search.propose(min(batch, trials - len(out)), measured)
        search_seconds = time.perf_counter() - start
        if not configs:
            break
        results = [measure(c) for c in configs]
        start = time.perf_counter()
        search.update(configs, [r[0] for r in results])
        search_seconds += time.perf_counter() - start
        for config, (seconds, features, error) in zip(configs, results):
            measured.add(config_key(config))
            out.append({"config": config, "seconds": seconds, "features": features,
                        "error": error, "search_seconds": search_seconds / len(configs),
                        "gflops": task.flops / seconds / 1e9 if seconds else 0.0})
    return out


def trials_to_reach(trials: list[dict], goal: float) -> int | None:
    best = 0.0
    for n, t in enumerate(trials, 1):
        best = max(best, t["gflops"])
        if best >= goal:
            return n
    return None


def training_rows(*parts):
    """A TrainingSet of the rows of ``parts``: TrainingSets, or (trials, task name)."""
    from dlc.autotune.cost_model import TrainingSet

    data = TrainingSet()
    for part in parts:
        if isinstance(part, TrainingSet):
            for x, y, group in zip(*part.arrays()):
                data.add(group, x, y)
        else:
            trials, group = part
            for t in trials:
                if t["features"] is not None:
                    data.add(group, t["features"], t["gflops"])
    return data


def ranking_accuracy(train, test, objective: str, seed: int) -> float | None:
    """Pairwise accuracy on the ``test`` rows of a model fitted on the ``train`` rows
    (TrainingSets)."""
    from dlc.autotune.cost_model import CostModel

    model = CostModel(objective=objective, seed=seed)
    if not len(train) or not model.fit(*train.arrays()):
        return None
    return model.pairwise_accuracy(*test.arrays())


def features_timing() -> None:
    """Time lowering and feature extraction of a GEMM and a ResNet-like convolution."""
    from dlc.autotune.features import extract
    from dlc.schedules.cpu.gemm import gemm_schedule
    from dlc.tir.lower import lower

    kernels = [("gemm 512^3 (packed, tiled)", lower(gemm_schedule(512, 512, 512)[0]))]
    kernels.append(("conv 1x64x56x56, 3x3x64", _conv_kernel()))
    for name, func in kernels:
        start = time.perf_counter()
        for _ in range(20):
            x = extract(func)
        ms = (time.perf_counter() - start) / 20 * 1e3
        print(f"{name}: {ms:.2f} ms per extract ({len(x)} features)")


def _conv_kernel():
    from onnx import TensorProto, helper, numpy_helper

    from dlc.compile import import_model, infer_types, run_graph_passes
    from dlc.compiler.kernels import node_kernel

    w = numpy_helper.from_array(np.ones((64, 64, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 56, 56])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64, 56, 56])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    graph = run_graph_passes(infer_types(import_model(model, None)), 3)
    funcs = [node_kernel(graph, node, f"k{k}").func for k, node in enumerate(graph.nodes)]
    return max(funcs, key=lambda f: len(str(f)))


def run_searches(task: GemmTask, args, earlier) -> dict:
    """Trials of each search on ``task``: random, guided and (with rows of ``earlier``
    tasks) guided+prior."""
    from dlc.autotune.cost_model import CostModel
    from dlc.autotune.features import extract
    from dlc.autotune.search import EvolutionarySearch, RandomSearch

    space, measure = task.space(), Measurer(task)

    def featurize(config):
        return extract(task.lower(config))

    def guided(training=None):
        return EvolutionarySearch(space, CostModel(seed=args.seed), featurize, args.seed,
                                  training=training, group=task.name)

    runs = {"random": tune(task, RandomSearch(space, args.seed), measure, args.trials,
                           args.batch),
            "guided": tune(task, guided(), measure, args.trials, args.batch)}
    if earlier is not None and len(earlier):
        runs["guided+prior"] = tune(task, guided(training_rows(earlier)), measure,
                                    args.trials, args.batch)
    return runs


def report(task: GemmTask, runs: dict, earlier, seed: int) -> None:
    """Print the searches' progress and the cost model's ranking accuracy."""
    best = max(t["gflops"] for trials in runs.values() for t in trials)
    print(f"\n{task.name} ({len(task.space())} configurations; best {best:.2f} GFLOP/s)")
    print(f"  {'search':14s} {'best GFLOP/s':>12s} {'at trial 16':>11s} {'errors':>6s} "
          f"{'to 90%':>7s} {'to 95%':>7s} {'search s':>9s}")
    for name, trials in runs.items():
        reach = [trials_to_reach(trials, f * best) for f in (0.9, 0.95)]
        print(f"  {name:14s} {max(t['gflops'] for t in trials):12.2f} "
              f"{max(t['gflops'] for t in trials[:16]):11.2f} "
              f"{sum(1 for t in trials if not t['seconds']):6d} "
              + " ".join(f"{'-' if r is None else r:>7}" for r in reach)
              + f" {sum(t['search_seconds'] for t in trials):9.1f}")
    held_out = training_rows((runs["random"], task.name))
    train = training_rows(earlier, (runs["guided"], task.name))
    for objective in ("regression", "rank"):
        line = (f"  pairwise ranking accuracy ({objective}) on the {len(held_out)} "
                f"random-search measurements: "
                f"{_fmt(ranking_accuracy(train, held_out, objective, seed))} (trained on "
                f"guided{' + earlier tasks' if len(earlier) else ''}: {len(train)} rows)")
        if len(earlier):
            line += (f"; earlier tasks only: "
                     f"{_fmt(ranking_accuracy(earlier, held_out, objective, seed))}")
        print(line)


def main(argv=None) -> int:
    from dlc.autotune.cost_model import TrainingSet

    args = parse_args(argv)
    if args.features_timing:
        features_timing()
        return 0
    print(f"CPU: {_cpu_name()}; threads {args.threads}; {args.trials} trials per search, "
          f"batches of {args.batch}; seed {args.seed}")
    earlier = TrainingSet()  # rows of the tasks done so far
    started = time.perf_counter()
    saved: dict = {}
    for M, N, K in args.shapes:
        task = GemmTask(M, N, K, args.threads)
        runs = run_searches(task, args, None if args.no_transfer else earlier)
        report(task, runs, earlier, args.seed)
        saved[task.name] = {name: [dict(t, features=None if t["features"] is None
                                        else t["features"].tolist()) for t in trials]
                            for name, trials in runs.items()}
        earlier = training_rows(earlier, *((trials, task.name) for trials in runs.values()))
        sys.stdout.flush()
    print(f"\n{time.perf_counter() - started:.0f} s in all")
    if args.save:
        with open(args.save, "w") as f:
            json.dump({"cpu": _cpu_name(), "args": sys.argv[1:], "tasks": saved}, f)
    return 0


def _fmt(acc) -> str:
    return "n/a" if acc is None or math.isnan(acc) else f"{acc:.3f}"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
