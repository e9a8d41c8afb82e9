"""The tuning loop end to end on a small model: records, resume, compile with the log."""

import json

import numpy as np
import pytest
from tiny_models import small_model, small_reference

import dlc
from dlc.autotune.log import read_log
from dlc.autotune.tuner import parse_budget, tune
from dlc.errors import DlcError


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return small_model(str(tmp_path_factory.mktemp("tune") / "small.onnx"))


def test_tune_logs_every_measurement_resumes_and_compiles(model, tmp_path):
    log = tmp_path / "tune.jsonl"
    first = tune(model, log, trials=6, threads=1, progress=_Quiet(), confirm=False)
    records = read_log(log).records
    assert len(records) == 6 == sum(r.trials for r in first.tasks)
    assert {r["task"] for r in records} == {r.task.key for r in first.tasks}
    for record in records:
        assert record["schema"] == 2 and record["target"]["cpu"] and record["seed"] == 0
        assert record["error"] is not None or record["seconds"]
        assert record["weights"] == {"small": 1}
    assert sum(r.get("default", False) for r in records) == 4  # the defaults come first
    second = tune(model, log, trials=4, threads=1, progress=_Quiet(), confirm=False)
    again = read_log(log).records
    keys = [(r["task"], json.dumps(r["config"], sort_keys=True)) for r in again]
    assert len(keys) == len(set(keys))  # nothing measured twice
    assert len(again) > len(records)
    assert second.model_seconds() is not None
    compiled = dlc.compile(model, tuning_log=log)
    assert all(k.tuned for k in compiled.kernels)
    x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 12)
    np.testing.assert_allclose(compiled.run(x)[0], small_reference(x)[0], rtol=1e-5,
                               atol=1e-6)


def test_budgets_are_checked():
    assert parse_budget("90s") == 90 and parse_budget("20m") == 1200
    assert parse_budget("1.5h") == 5400 and parse_budget("7") == 7
    for bad in ("soon", "-3m", "0"):
        with pytest.raises(DlcError, match="budget"):
            parse_budget(bad)
    with pytest.raises(DlcError, match="give a budget"):
        tune("unused.onnx", "unused.jsonl")


def _children_of(pid: int) -> list:
    """Processes whose command line names a multiprocessing child of ``pid``'s run (they
    are re-parented when it dies; found by their spawn marker and start after it)."""
    import subprocess

    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines()[1:]
            if "spawn_main" in line and line.split()[1] in (str(pid), "1")]


class _Quiet:
    def update(self, *args, **kwargs):
        pass

    def close(self):
        pass


@pytest.mark.tune
def test_a_run_killed_with_sigkill_leaves_a_log_that_loads_and_resumes(model, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    log = tmp_path / "tune.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "dlc", "tune", model, "--log", str(log),
                             "--trials", "1000", "--threads", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if log.exists() and log.read_text().count("\n") >= 4:
                break  # the 4 defaults: the space's 9 other configurations may be in flight
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = read_log(log).records
    assert len(before) >= 4
    deadline = time.monotonic() + 10  # the build and measuring processes end with it
    while _children_of(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _children_of(proc.pid)
    tune(model, log, trials=3, threads=1, progress=_Quiet(), confirm=False)
    after = read_log(log).records
    keys = [(r["task"], json.dumps(r["config"], sort_keys=True)) for r in after]
    assert len(keys) == len(set(keys)) and len(after) > len(before)


class _FakeEngine:
    """Deterministic "measurements": each candidate's time is a hash of its loop nest."""

    def reference(self, func, inputs):
        return self._result(func)

    def measure(self, funcs, inputs, reference, slow_after):
        return [self._result(f) for f in funcs]

    def close(self):
        pass

    @staticmethod
    def _result(func):
        import hashlib

        from dlc.autotune.measure import MeasureResult
        from dlc.tir.canonical import canonical_text

        digest = hashlib.sha1(canonical_text(func).encode()).digest()
        return MeasureResult([(1 + digest[0]) * 1e-6] * 3, None)


@pytest.mark.parametrize("search", ["model", "random"])
def test_same_seed_and_measurements_give_the_same_search_path(model, tmp_path, search):
    paths = []
    for run in range(2):
        log = tmp_path / f"{run}.jsonl"
        tune(model, log, trials=14, seed=3, search=search, engine=_FakeEngine(),
             progress=_Quiet(), confirm=False)
        paths.append([(r["task"], r["config"]) for r in read_log(log).records])
    # the small model's whole space (13 configurations), in the same order both times
    assert paths[0] == paths[1] and len(paths[0]) == 13


def test_scalar_parameters_are_measured_as_scalars(tmp_path):
    """Clip's 0-d bounds reach the measuring process 0-d (MobileNetV2's ReLU6)."""
    from dlc.graph import GraphBuilder

    b = GraphBuilder("clip")
    x = b.input("x", (4, 64))
    b.output(b.op("Clip", x, b.constant(np.float32(0)), b.constant(np.float32(6))))
    result = tune(b.build(), tmp_path / "clip.jsonl", trials=1, threads=1, progress=_Quiet())
    assert all(r.default_seconds for r in result.tasks)


class _BrokenDefaultEngine(_FakeEngine):
    """The first task's default schedule crashes; everything else measures."""

    def __init__(self):
        self.calls = 0

    def reference(self, func, inputs):
        from dlc.autotune.measure import MeasureResult

        self.calls += 1
        if self.calls == 1:
            return MeasureResult([], "runtime_crash", "killed by SIGSEGV")
        return self._result(func)


def test_a_task_whose_default_fails_is_left_out_and_the_run_goes_on(model, tmp_path):
    log = tmp_path / "tune.jsonl"
    with pytest.warns(dlc.DlcWarning, match="default schedule of task .* fails"):
        result = tune(model, log, trials=8, engine=_BrokenDefaultEngine(), progress=_Quiet(),
                      confirm=False)
    first, *rest = result.tasks
    assert first.default_seconds is None and first.best_seconds is None
    assert all(r.default_seconds for r in rest)
    records = read_log(log).records
    assert records[0]["error"]["class"] == "runtime_crash" and len(records) == 8
    assert result.model_seconds() is None  # a task without a time: no estimate


class _LuckyEngine(_FakeEngine):
    """The hash "measurements" of _FakeEngine, except that every other one of the first
    ``lucky_runs`` candidates measured (the search's) is lucky: 100x faster (a quiet moment
    on a noisy machine). ``lucky`` holds the lucky times."""

    def __init__(self, lucky_runs: int):
        self.runs, self.lucky_runs, self.lucky = 0, lucky_runs, set()

    def measure(self, funcs, inputs, reference, slow_after):
        from dlc.autotune.measure import MeasureResult

        results = []
        for func in funcs:
            result = self._result(func)
            if self.runs < self.lucky_runs and self.runs % 2 == 0:
                result = MeasureResult([t / 100 for t in result.seconds], None)
                self.lucky.add(result.seconds[0])
            self.runs += 1
            results.append(result)
        return results


def test_the_confirmation_measures_the_leaders_again_and_decides(model, tmp_path):
    """Each task's leaders (at most CONFIRM_LEADERS) and its default are measured again
    in CONFIRM_ROUNDS rounds and logged as confirmation records; compile applies the best
    confirmation, not the luckiest single measurement of the search."""
    from dlc.autotune.log import best_records
    from dlc.autotune.tuner import CONFIRM_LEADERS, CONFIRM_ROUNDS, resolve

    log = tmp_path / "tune.jsonl"
    engine = _LuckyEngine(lucky_runs=13 - 4)  # the search's runs: 4 tasks' defaults first
    result = tune(model, log, trials=13, seed=3, engine=engine, progress=_Quiet())
    records = read_log(log).records
    search = [r for r in records if not r.get("confirmation")]
    confirmations = [r for r in records if r.get("confirmation")]
    assert len(search) == 13 and confirmations
    for task in result.tasks:
        mine = [r for r in confirmations if r["task"] == task.task.key]
        measured = {json.dumps(r["config"], sort_keys=True) for r in search
                    if r["task"] == task.task.key}
        if len(measured) < 2:
            assert not mine  # only the default: nothing to confirm
            continue
        assert len(mine) == 1 + min(CONFIRM_LEADERS, len(measured) - 1)
        assert sum(r.get("default", False) for r in mine) == 1
        assert all(len(r["seconds"]) == 3 * CONFIRM_ROUNDS for r in mine)  # 3 per round
        best = min(mine, key=lambda r: r["seconds"][0])
        assert task.best_seconds == pytest.approx(best["seconds"][0])
    assert any(r["seconds"] and r["seconds"][0] in engine.lucky for r in search)
    chosen, _ = best_records(records, resolve(None, None)[0])
    assert chosen
    unconfirmed, _ = best_records(search, resolve(None, None)[0])
    assert any(set(r["seconds"]) & engine.lucky for r in unconfirmed.values())
    confirmed = {r["task"] for r in confirmations}
    for key, record in chosen.items():  # no lucky measurement decides
        assert record.get("confirmation", False) is (key in confirmed)
        assert not set(record["seconds"]) & engine.lucky


def test_a_leader_that_no_longer_fits_its_template_is_not_confirmed(model, tmp_path):
    """An error-free record from an older log whose configuration the template now
    rejects is a leader by its time, but the confirmation leaves it out and goes on."""
    from dlc.autotune.log import LogWriter, make_record
    from dlc.autotune.task import extract_tasks
    from dlc.autotune.tuner import resolve

    target, _ = resolve(None, None)
    task = next(t for t in extract_tasks(model, target) if len(t.space(target)) > 1)
    stale = dict(task.space(target).default())
    stale[next(iter(stale))] = 10_000  # not one of the knob's choices any more
    log = tmp_path / "tune.jsonl"
    with LogWriter(log) as writer:
        writer.append(make_record(task.key, task.workload, task.template, target, 1, stale,
                                  {"version": 1, "primitives": []}, [1e-9], None, 0))
    tune(model, log, trials=6, seed=3, engine=_FakeEngine(), progress=_Quiet())
    confirmations = [r for r in read_log(log).records if r.get("confirmation")]
    assert confirmations and all(r["config"] != stale for r in confirmations)
