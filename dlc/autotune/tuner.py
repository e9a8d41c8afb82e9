"""The tuning loop: tasks from models, a budget spread by the task scheduler, candidates
proposed by the search, measured without letting any of them end the run, and every
measurement appended to the log as it arrives.

    algorithms measured first                     # which convolutions use Winograd
    tasks = extract_tasks(models)                 # distinct kernels, weighted
    for each task: its default configuration      # the baseline and the reference output
    while budget left:
      task = scheduler.next_task()                # largest expected whole-model saving
      configs = search[task].propose(batch)       # never one the log already has
      results = measure(lowered configs)          # builds in parallel, then timed alone
      append a record per result; search[task].update(...)

Then the leaders of each task are confirmed: its CONFIRM_LEADERS fastest configurations
and its default are measured again, in CONFIRM_ROUNDS interleaved rounds, and logged as
``confirmation`` records, which decide what ``dlc compile --tuning-log`` applies. A search
that measures hundreds of configurations once also picks the luckiest measurement (the
winner's curse: on a noisy machine the minimum of many medians is too low); measured side
by side, the leaders and the default are compared under the same conditions. A time
budget keeps CONFIRM_SHARE of itself for this; a trial budget counts the search only.

A run given a log that already holds measurements resumes: measured configurations are
not measured again (their records seed the searches and the cost model), and the
default configuration is re-run only to get the reference output, not logged again.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from dlc.errors import DlcError
from dlc.target import Target

#: Candidates measured per batch (one build round, then one timing round).
BATCH = 8
#: A candidate whose first (cold) run is this many times slower than the task's best, and
#: slower than EARLY_STOP_FLOOR seconds, stops early: a first run of a microsecond kernel
#: is dominated by cold caches and says nothing.
SLOW_FACTOR = 4.0
EARLY_STOP_FLOOR = 1e-3
#: Leaders of a task re-measured with its default at the end of a run, in rounds (the
#: order rotates each round), and the share of a time budget kept for it.
CONFIRM_LEADERS = 3
CONFIRM_ROUNDS = 3
CONFIRM_SHARE = 0.1


@dataclass
class TaskResult:
    """How one task ended: its best and default medians (seconds), trials and errors."""

    task: object
    best_seconds: float | None
    default_seconds: float | None
    trials: int
    errors: dict


@dataclass
class TuneResult:
    tasks: list  # TaskResult per task
    seconds: float  # wall time of the run
    log: str

    def model_seconds(self, model: str | None = None) -> float | None:
        """Estimated latency of a model (default: all of them): occurrences x best."""
        total = 0.0
        for r in self.tasks:
            count = r.task.models.get(model, 0) if model else r.task.weight
            if not count:
                continue
            best = r.best_seconds if r.best_seconds is not None else r.default_seconds
            if best is None:
                return None
            total += count * best
        return total


def parse_budget(text: str) -> float:
    """Seconds of a budget written "90s", "20m", "1.5h" or a plain number of seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = str(text).strip().lower()
    try:
        if text and text[-1] in units:
            value = float(text[:-1]) * units[text[-1]]
        else:
            value = float(text)
    except ValueError:
        raise DlcError(f"cannot read the time budget {text!r}; write it like 90s, 20m or "
                       "1.5h") from None
    if not value > 0 or math.isinf(value):
        raise DlcError(f"the time budget must be positive, got {text!r}")
    return value


def tune(models, log, target=None, trials: int | None = None, seconds: float | None = None,
         threads: int | None = None, seed: int = 0, search: str = "model",
         input_shapes=None, batch: int = BATCH, progress=None, timeout: float = 10.0,
         build_workers: int | None = None, engine=None, confirm: bool = True) -> TuneResult:
    """Tune the kernels of ``models`` (one or a list of ONNX models, paths or Graphs) for
    ``target`` within ``trials`` measurements or ``seconds`` of wall time (the first one
    reached; one of them is required), appending every measurement to the JSONL ``log``.

    ``search`` is "model" (evolutionary search guided by the learned cost model) or
    "random"; ``threads`` the threads a kernel runs with (default: the target's
    -num-threads, else every core); ``progress`` a dlc.autotune.progress.Progress (None:
    one is made for stdout). ``engine`` measures batches (default: local processes,
    ``dlc.autotune.measure``; ``dlc.autotune.ray_engine`` fans out over a Ray cluster).
    ``confirm``: measure each task's leaders again at the end (see the module docstring;
    not counted in ``trials``, and within ``seconds``).
    """
    from dlc.autotune.algorithms import candidates, choices_chooser, decide
    from dlc.autotune.log import LogWriter, read_log
    from dlc.autotune.task import extract_tasks

    if trials is None and seconds is None:
        raise DlcError("give a budget: a number of trials, a time, or both")
    if trials is not None and trials < 1:
        raise DlcError(f"trials must be at least 1, got {trials}")
    if search not in ("model", "random"):
        raise DlcError(f"search must be 'model' or 'random', got {search!r}")
    target, threads = resolve(target, threads)
    log = os.fspath(log)
    start = time.monotonic()
    models = list(models) if isinstance(models, (list, tuple)) else [models]
    records = read_log(log).records if os.path.exists(log) else []
    engine = engine or LocalEngine(target, threads, timeout, build_workers)
    own_progress = progress is None
    try:
        # which convolutions run as Winograd, measured first (dlc.autotune.algorithms)
        choices, algorithm_records = decide(candidates(models, target, input_shapes),
                                            records, target, threads, engine, seed)
        tasks = extract_tasks(models, target, input_shapes,
                              choose_algorithm=choices_chooser(choices))
        if progress is None:
            from dlc.autotune.progress import Progress

            progress = Progress(total_trials=trials)
        run = _Run(tasks, target, threads, seed, search, records, engine, progress, batch)
        with LogWriter(log) as writer:
            for record in algorithm_records:
                writer.append(record)
            run.writer = writer
            run.baselines()
            search_seconds = seconds * (1 - CONFIRM_SHARE) if confirm and seconds else seconds
            while True:
                done = run.trials
                if trials is not None and done >= trials:
                    break
                if seconds is not None and time.monotonic() - start >= search_seconds:
                    break
                index = run.scheduler.next_task()
                if index is None:
                    break  # every space measured whole
                size = batch if trials is None else min(batch, trials - done)
                run.tune_batch(index, size)
            if confirm:
                run.confirm(None if seconds is None else start + seconds)
    finally:
        engine.close()
        if own_progress and progress is not None:
            progress.close()
    return TuneResult(run.results(), time.monotonic() - start, log)


def resolve(target, threads: int | None) -> tuple[Target, int]:
    """The Target a run tunes for and the threads a kernel runs with (default: the
    target's -num-threads, else every core of this machine)."""
    target = Target.parse(target).check_available()
    return target, threads or target.num_threads or target.hardware.cores


def cold_cache_bytes(target: Target) -> int:
    """Bytes to rewrite before a cold-cache run: twice the target's last-level cache."""
    hw = target.hardware
    return 2 * max(hw.l3_bytes or 0, hw.l2_bytes or 0, 1 << 20)


class LocalEngine:
    """Builds in a pool of local processes, then times each candidate alone in one
    reused measuring process (dlc.autotune.measure)."""

    def __init__(self, target: Target, threads: int, timeout: float,
                 build_workers: int | None):
        from dlc.autotune.measure import Builder, Runner

        workers = build_workers or max(1, min(os.cpu_count() or 1, 8))
        self.builder = Builder(target, workers)
        self.runner = Runner(threads, timeout=timeout)
        self.flush_bytes = cold_cache_bytes(target)

    def reference(self, func, inputs, cold: bool = False):
        """The outputs and timing of the default configuration (a MeasureResult);
        ``cold``: each run starts with cold caches."""
        (built,) = self.builder.build([func])
        if not hasattr(built, "library"):
            return built
        return self.runner.run(built, inputs, None, keep_outputs=True,
                               flush_bytes=self.flush_bytes if cold else 0)

    def measure(self, funcs, inputs, reference, slow_after):
        from dlc.autotune.measure import measure

        return measure(funcs, inputs, reference, self.builder, self.runner,
                       slow_after=slow_after)

    def measure_rounds(self, funcs, inputs, reference, rounds: int) -> list:
        """Like tuner._measure_rounds, with each func built once."""
        builds = self.builder.build(funcs)
        return _in_rounds(len(funcs), rounds, lambda order: [
            self.runner.run(builds[i], inputs, reference) for i in order])

    def close(self) -> None:
        self.builder.close()
        self.runner.close()


class _Run:
    """The state of one tuning run (see the module docstring)."""

    def __init__(self, tasks, target, threads, seed, search, records, engine, progress,
                 batch):
        from dlc.autotune.cost_model import CostModel, TrainingSet
        from dlc.autotune.log import measured
        from dlc.autotune.scheduler import TaskScheduler, TaskState

        self.tasks, self.target, self.threads, self.seed = tasks, target, threads, seed
        self.engine, self.progress, self.batch = engine, progress, batch
        self.writer = None
        self.trials = 0
        self.spaces = [t.space(target) for t in tasks]
        self.measured = [measured(records, t.key, target) for t in tasks]
        # the cost model starts from what other tasks' records taught (transfer); this
        # run's tasks learn their own records through their search (_replay), once
        keys = {t.key for t in tasks}
        self.training = TrainingSet.from_records(
            [r for r in records if r["task"] not in keys], target)
        self.inputs: list = [None] * len(tasks)
        self.references: list = [None] * len(tasks)
        self.defaults: list = [None] * len(tasks)
        self.errors = [dict() for _ in tasks]
        self.features: list = [dict() for _ in tasks]  # config key -> loop-IR features
        self.confirmed: list = [None] * len(tasks)  # (best, default) medians, confirmed
        states = []
        for k, (task, space) in enumerate(zip(tasks, self.spaces)):
            best = _best_seconds(self.measured[k].values())
            states.append(TaskState(task.weight, len(space), len(self.measured[k]), best))
        self.scheduler = TaskScheduler(states)
        self.searches = []
        for k, (task, space) in enumerate(zip(tasks, self.spaces)):
            if search == "random":
                from dlc.autotune.search import RandomSearch

                self.searches.append(RandomSearch(space, seed + k))
            else:
                from dlc.autotune.search import EvolutionarySearch

                self.searches.append(EvolutionarySearch(
                    space, CostModel(seed=seed), self._featurizer(k), seed + k,
                    training=self.training, group=task.key))
            self._replay(k)

    def _featurizer(self, k: int):
        """Features of a configuration of task ``k``, lowered once however often they are
        asked for (by the search's ranking, its training, the log)."""
        def featurize(config, func=None):
            from dlc.autotune.features import extract
            from dlc.autotune.search import config_key

            key = config_key(config)
            if key not in self.features[k]:
                if func is None:
                    func = self.tasks[k].lower(config, self.target)[0]
                self.features[k][key] = extract(func)
            return self.features[k][key]

        return featurize

    def _replay(self, k: int) -> None:
        """Tell a search what the log already measured of its task (a resumed run)."""
        from dlc.autotune.measure import MeasureResult

        records = list(self.measured[k].values())
        if not records:
            return
        configs = [r["config"] for r in records]
        results = [MeasureResult(list(r["seconds"]), _error_class(r["error"]))
                   for r in records]
        self.searches[k].update(configs, results)

    # -- the default configuration of every task ------------------------------------------
    def baselines(self) -> None:
        """Run each task's default configuration: the reference output of its candidates,
        and its time (logged unless the log has it already)."""
        from dlc.autotune.search import config_key

        for k, task in enumerate(self.tasks):
            self.inputs[k] = task.inputs(self.seed)
            config = self.spaces[k].default()
            func, trace = task.lower(None, self.target)
            result = self.engine.reference(func, self.inputs[k])
            key = config_key(config)
            if result.error is not None:  # a dlc bug: the task is left out, the run goes on
                import warnings

                from dlc.errors import DlcWarning

                warnings.warn(f"the default schedule of task {task.name} fails "
                              f"({result.error}: {result.message}); it is not tuned (a dlc "
                              "bug: please report it)", DlcWarning, stacklevel=2)
                if key not in self.measured[k]:
                    self.measured[k][key] = self._log(k, config, trace, result, func,
                                                      default=True)
                    self.trials += 1
                state = self.scheduler.states[k]
                state.measured = state.space_size  # nothing to compare candidates with
                continue
            self.references[k] = result.outputs
            logged = self.measured[k].get(key)
            self.defaults[k] = (_median(logged["seconds"]) if logged is not None
                                and not logged["error"] else result.median)
            if logged is None:
                self.measured[k][key] = self._log(k, config, trace, result, func,
                                                  default=True)
                self.trials += 1
                self.scheduler.record(k, 1, result.median)
                self.searches[k].update([config], [result])
            self._show(k)

    # -- one batch of one task --------------------------------------------------------------
    def tune_batch(self, k: int, size: int) -> None:
        from dlc.autotune.measure import MeasureResult
        from dlc.autotune.search import config_key

        task, search = self.tasks[k], self.searches[k]
        configs = search.propose(size, set(self.measured[k]))
        if not configs:
            self.scheduler.states[k].measured = self.scheduler.states[k].space_size
            return
        lowered, funcs = [], []
        for config in configs:
            try:
                func, trace = task.lower(config, self.target)
            except DlcError as err:  # a configuration the template cannot apply
                lowered.append((None, None, MeasureResult([], "build_error", str(err))))
                continue
            lowered.append((func, trace, None))
            funcs.append(func)
        best = self.scheduler.states[k].best
        results = iter(self.engine.measure(funcs, self.inputs[k], self.references[k],
                                           max(SLOW_FACTOR * best, EARLY_STOP_FLOOR)
                                           if best else None))
        outcomes = []
        for config, (func, trace, failed) in zip(configs, lowered):
            result = failed or next(results)
            self.measured[k][config_key(config)] = self._log(k, config, trace, result, func)
            outcomes.append(result)
        search.update(configs, outcomes)
        self.trials += len(configs)
        self.scheduler.record(k, len(configs), _best_seconds_of(outcomes))
        self._show(k)

    # -- the leaders of every task, measured again side by side ---------------------------
    def confirm(self, deadline: float | None) -> None:
        """Measure each task's leaders and default again in interleaved rounds and log them
        as confirmation records; the tasks that weigh most in the model first, until
        ``deadline`` (time.monotonic()) passes."""
        from dlc.autotune.search import config_key

        order = sorted(range(len(self.tasks)), key=lambda k: -self.tasks[k].weight * (
            self.scheduler.states[k].best or self.defaults[k] or 0.0))
        for k in order:
            if deadline is not None and time.monotonic() >= deadline:
                return
            if self.defaults[k] is None:
                continue  # the default failed: nothing to compare with
            default = self.spaces[k].default()
            ranked = sorted(_medians(self.measured[k].values()).items(),
                            key=lambda item: item[1][0])
            leaders = [config for key, (_, config) in ranked
                       if key != config_key(default)][:CONFIRM_LEADERS]
            if not leaders:
                continue
            configs, lowered = [], []
            for i, config in enumerate([default, *leaders]):
                try:  # a leader from an older log may no longer fit the template
                    lowered.append(self.tasks[k].lower(config if i else None, self.target))
                except DlcError:
                    continue
                configs.append(config)
            if len(configs) < 2 or configs[0] is not default:
                continue
            rounds = _measure_rounds(self.engine, [f for f, _ in lowered], self.inputs[k],
                                     self.references[k], CONFIRM_ROUNDS)
            medians = []
            for i, (config, (func, trace), results) in enumerate(zip(configs, lowered, rounds)):
                result = _merged(results)
                self._log(k, config, trace, result, func, default=i == 0, confirmation=True)
                medians.append(result.median)
            if medians[0] is not None and any(m is not None for m in medians[1:]):
                best = min(m for m in medians if m is not None)
                self.confirmed[k] = (best, medians[0])
                self.scheduler.states[k].best = best
            self._show(k)

    def _log(self, k, config, trace, result, func, default: bool = False,
             confirmation: bool = False) -> dict:
        """Append a record of one measurement to the log; returns it."""
        from dlc.autotune.features import FEATURE_VERSION
        from dlc.autotune.log import make_record

        task = self.tasks[k]
        if result.error:
            self.errors[k][result.error] = self.errors[k].get(result.error, 0) + 1
        features = None
        if func is not None:
            values = self._featurizer(k)(config, func)
            features = {"version": FEATURE_VERSION, "values": [float(v) for v in values]}
        error = None if result.error is None else {"class": result.error,
                                                   "message": result.message}
        record = make_record(
            task.key, task.workload, task.template, self.target, self.threads, config,
            trace if trace is not None else {"version": 1, "primitives": []},
            list(result.seconds), error, self.seed, flops=task.flops, features=features,
            weights=dict(task.models), default=default, confirmation=confirmation)
        self.writer.append(record)
        return record

    def _show(self, k: int) -> None:
        task, state = self.tasks[k], self.scheduler.states[k]
        best = state.best
        gflops = task.flops / best / 1e9 if best and task.flops else None
        self.progress.update(task.name, state.measured, state.space_size, best, gflops,
                             self._model_seconds())

    def _model_seconds(self) -> float | None:
        total = 0.0
        for task, state, default in zip(self.tasks, self.scheduler.states, self.defaults):
            best = state.best if state.best is not None else default
            if best is None:
                return None
            total += task.weight * best
        return total

    def results(self) -> list:
        out = []
        for k, (task, state) in enumerate(zip(self.tasks, self.scheduler.states)):
            best, default = self.confirmed[k] or (state.best, self.defaults[k])
            out.append(TaskResult(task, best, default, state.measured, self.errors[k]))
        return out


def _medians(records) -> dict:
    """config key -> (median, config) of the error-free records among ``records``."""
    from dlc.autotune.search import config_key

    return {config_key(r["config"]): (_median(r["seconds"]), r["config"]) for r in records
            if not r.get("error") and r.get("seconds")}


def _measure_rounds(engine, funcs, inputs, reference, rounds: int) -> list:
    """Each func measured ``rounds`` times, the order rotating every round (so none is
    always timed first): a list of MeasureResults per func."""
    if hasattr(engine, "measure_rounds"):
        return engine.measure_rounds(funcs, inputs, reference, rounds)
    return _in_rounds(len(funcs), rounds, lambda order: engine.measure(
        [funcs[i] for i in order], inputs, reference, None))


def _in_rounds(count: int, rounds: int, measure) -> list:
    """``measure(order)`` (a list of indices -> their results, in that order) once per
    round, round r starting at index r mod count; the results per index."""
    per_index: list = [[] for _ in range(count)]
    for r in range(rounds):
        order = [(i + r) % count for i in range(count)]
        for i, result in zip(order, measure(order)):
            per_index[i].append(result)
    return per_index


def _merged(results):
    """One MeasureResult of several: every round's times, or the first error."""
    from dlc.autotune.measure import MeasureResult

    failed = next((r for r in results if r.error is not None), None)
    if failed is not None:
        return failed
    return MeasureResult([t for r in results for t in r.seconds], None)


def _median(seconds) -> float | None:
    import statistics

    return statistics.median(seconds) if seconds else None


def _error_class(error) -> str | None:
    if error is None:
        return None
    return error.get("class") if isinstance(error, dict) else str(error)


def _best_seconds(records) -> float | None:
    times = [_median(r["seconds"]) for r in records if isinstance(r, dict)
             and r.get("seconds") and not r.get("error")]
    return min(times) if times else None


def _best_seconds_of(results) -> float | None:
    times = [r.median for r in results if r.error is None and r.median]
    return min(times) if times else None
