"""Tuning reports: what a tuning log says about each task and each model it was tuned for.

``summarize(records)`` turns schema-2 log records (dicts, in log order) into a ``Summary``:
one ``TaskSummary`` per task (trials, errors by class, best latency, GFLOP/s and share of
this machine's peak, speed-up over the default schedule, trials to reach 95% of the best)
and one ``ModelSummary`` per model named in the records' ``weights`` (the estimated
whole-model latency, its history over the tuning, how much of the final speed the first
third of the trials reached). ``format_table`` prints it; ``render_html`` (in
``report_html``) makes one self-contained page; ``trace_to_python`` prints a schedule
trace as calls to the schedule API. Everything is a pure function of the records except
``host_ghz`` (dlc.hardware.reported_ghz), which reads /proc/cpuinfo for the peak
estimate.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dlc.errors import DlcError, ScheduleError
from dlc.hardware import cpu_info
from dlc.hardware import reported_ghz as host_ghz

# The error classes of dlc.autotune.measure in the order reports show them, with the short
# names of the text table; a class not listed here is shown by its own name.
ERROR_NAMES = {"build_error": "build", "runtime_crash": "crash", "timeout": "timeout",
               "wrong_result": "wrong", "stopped_early": "stopped"}


@dataclass
class TaskSummary:
    """One task's trials on one target, as the log records them."""

    key: str
    name: str                    # e.g. "dense(64x256, 256x128) -> 64x128"
    target: str                  # "" when the log holds one target only
    trials: int
    errors: dict[str, int]       # error class -> records
    best_seconds: float | None   # the lowest median of an error-free record
    best_record: dict | None
    default_seconds: float | None  # the default schedule's median (records flagged default)
    flops: float | None
    peak_gflops: float | None
    trials_to_95: int | None     # trials until the best so far was within 95% of the best speed
    weights: dict[str, int]      # model -> occurrences of the task
    messages: dict[str, str]     # error class -> its first message
    history: list[tuple[int, float | None, float | None]] = field(repr=False)
    # per trial: (trial number from 1, its median or None for an error, best so far or None)

    @property
    def gflops(self) -> float | None:
        if not self.flops or not self.best_seconds:
            return None
        return self.flops / self.best_seconds / 1e9

    @property
    def percent_of_peak(self) -> float | None:
        if self.gflops is None or not self.peak_gflops:
            return None
        return 100.0 * self.gflops / self.peak_gflops

    @property
    def speedup(self) -> float | None:
        if self.default_seconds is None or not self.best_seconds:
            return None
        return self.default_seconds / self.best_seconds


@dataclass
class ModelSummary:
    """A model's estimated latency: the sum over its tasks of occurrences x latency, where a
    task's latency is its best record so far, or its default schedule's before one."""

    name: str
    weights: dict[str, int]          # task key -> occurrences
    estimate_seconds: float | None   # with the best records; None when a task lacks one
    default_seconds: float | None    # with the default schedules
    missing: list[str]               # keys of tasks with no error-free record
    timeline: list[tuple[int, float | None, float | None]] = field(repr=False)
    # per trial of the model's tasks: (trial number, seconds since the first, estimate)
    third: float | None = None       # final speed share reached within the first third

    @property
    def speedup(self) -> float | None:
        if self.default_seconds is None or not self.estimate_seconds:
            return None
        return self.default_seconds / self.estimate_seconds

    @property
    def third_trials(self) -> int:
        """The number of trials in the first third of the model's trials (rounded up)."""
        return math.ceil(len(self.timeline) / 3)


@dataclass
class Summary:
    tasks: list[TaskSummary]
    models: list[ModelSummary]
    records: int
    targets: list[str]               # distinct target labels, in log order
    first_time: datetime | None
    last_time: datetime | None


# -- reading -------------------------------------------------------------------------------
def read_records(path) -> tuple[list[dict], list[str]]:
    """The records of a tuning log and one line per thing skipped. The one place the report
    reads a log: through dlc.autotune.log.read_log when it exists, else a plain JSON-lines
    reader that keeps schema-2 objects and skips anything else."""
    from dlc.autotune import log

    if hasattr(log, "read_log"):
        with warnings.catch_warnings():  # the skipped lines are returned, not warned twice
            warnings.simplefilter("ignore")
            read = log.read_log(path)
        return list(read.records), [f"{where}: {reason}" for where, reason in read.skipped]
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise DlcError(f"cannot read tuning log {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise DlcError(f"{path} is not a tuning log (not UTF-8 text)") from None
    records, skipped = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            skipped.append(f"{path}:{number}: not a JSON object (a torn or garbled line)")
            continue
        if not isinstance(record, dict) or record.get("schema") != 2:
            skipped.append(f"{path}:{number}: not a schema-2 tuning record")
            continue
        records.append(record)
    if skipped and not records:
        raise DlcError(f"{skipped[0]}: {path} is not a tuning log")
    return records, skipped


def model_weights(model_path: str) -> dict[str, dict[str, int]]:
    """Task key -> {model name: occurrences} of the tasks of an ONNX model (its file name
    without extension names it), from dlc.autotune.task.extract_tasks."""
    try:
        from dlc.autotune.task import extract_tasks
    except ImportError as err:
        if err.name != "dlc.autotune.task":
            raise
        raise DlcError("--model needs dlc.autotune.task.extract_tasks, which this dlc "
                       "lacks") from None
    name = os.path.splitext(os.path.basename(model_path))[0]
    weights: dict[str, dict[str, int]] = {}
    for task in extract_tasks(model_path):
        entry = weights.setdefault(task.key, {})
        entry[name] = entry.get(name, 0) + int(task.weight)
    return weights


# -- one record ----------------------------------------------------------------------------
def median_seconds(record: dict) -> float | None:
    """The median time of an error-free record with times; None otherwise."""
    if record.get("error"):
        return None
    seconds = record.get("seconds")
    if not isinstance(seconds, list) or not seconds:
        return None
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and t > 0
               for t in seconds):
        return None
    return float(statistics.median(seconds))


def error_class(record: dict) -> str | None:
    error = record.get("error")
    if not error:
        return None
    if isinstance(error, dict):
        return str(error.get("class") or "error")
    return str(error)


def error_message(record: dict) -> str:
    error = record.get("error")
    return str(error.get("message") or "") if isinstance(error, dict) else ""


def record_time(record: dict) -> datetime | None:
    """When a record was written (a time without a zone is taken as UTC, as schema-1
    records upgraded from old logs have them)."""
    text = record.get("time")
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def target_label(record: dict) -> str:
    """E.g. "llvm -num-threads=2 (znver4, 2 threads)"."""
    target = record.get("target")
    if isinstance(target, dict):
        text, cpu = target.get("string") or target.get("kind") or "?", target.get("cpu")
    else:
        text, cpu = str(target or "?"), None
    extra = [str(cpu)] if cpu else []
    if record.get("threads"):
        extra.append(f"{record['threads']} threads")
    return text + (f" ({', '.join(extra)})" if extra else "")


def workload_name(record: dict) -> str:
    """A readable task name: template (input shapes) -> output shapes."""
    workload = record.get("workload") if isinstance(record.get("workload"), dict) else {}
    what = record.get("template") or workload.get("template") or workload.get("op") or "task"

    def shapes(kind):
        out = []
        for spec in workload.get(kind) or []:
            shape = spec[0] if isinstance(spec, (list, tuple)) and spec else spec
            out.append("x".join(map(str, shape)) if isinstance(shape, (list, tuple))
                       else str(shape))
        return ", ".join(out)

    name = f"{what}({shapes('inputs')})"
    return name + (f" -> {shapes('outputs')}" if workload.get("outputs") else "")


# -- peak ----------------------------------------------------------------------------------
def record_peak(record: dict, ghz: float | None) -> float | None:
    """The float32 peak of a record's CPU at ``ghz`` on its threads (None for a target that
    is not a CPU, or without a clock): dlc.hardware's CpuInfo gives the vector lanes and
    FMA units (one on the cores that have one). A record without a thread count ran on
    every core of the machine, taken to be this one."""
    target = record.get("target") if isinstance(record.get("target"), dict) else {}
    cores = record.get("threads") if record.get("threads") is not None else os.cpu_count()
    if target.get("kind") != "llvm" or not target.get("cpu") or not ghz \
            or not isinstance(cores, int) or cores < 1:
        return None
    info = cpu_info(str(target["cpu"]), str(target.get("features") or ""))
    return dataclasses.replace(info, cores=cores, ghz=ghz).peak_gflops()


# -- summaries -----------------------------------------------------------------------------
def summarize(records: list[dict], weights: dict[str, dict[str, int]] | None = None,
              ghz: float | None = None) -> Summary:
    """Per-task and per-model statistics of ``records`` (in log order). ``weights`` (task
    key -> {model: occurrences}) replaces the records' own ``weights``; ``ghz`` the clock
    of the peak estimate (default: this machine's, from /proc/cpuinfo)."""
    if ghz is None:
        ghz = host_ghz()
    labels = list(dict.fromkeys(target_label(r) for r in records))
    several = len(labels) > 1
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        groups.setdefault((str(r.get("task")), target_label(r) if several else ""), []).append(r)
    tasks = [_summarize_task(key, label, rs, weights, ghz) for (key, label), rs in
             groups.items()]
    times = [t for t in map(record_time, records) if t is not None]
    return Summary(tasks, _summarize_models(records, tasks, weights, several), len(records),
                   labels, min(times, default=None), max(times, default=None))


def _summarize_task(key, label, records, weights, ghz) -> TaskSummary:
    errors: dict[str, int] = {}
    messages: dict[str, str] = {}
    history = []
    best, best_record, default = None, None, None
    confirmations = [r for r in records if r.get("confirmation") is True]
    records = [r for r in records if r.get("confirmation") is not True] or confirmations
    for trial, r in enumerate(records, 1):
        cls = error_class(r)
        if cls:
            errors[cls] = errors.get(cls, 0) + 1
            messages.setdefault(cls, error_message(r))
        median = median_seconds(r)
        if median is not None and (best is None or median < best):
            best, best_record = median, r
        if median is not None and r.get("default") is True:
            default = median if default is None else min(default, median)
        history.append((trial, median, best))
    confirmed = _best_and_default(confirmations)
    if confirmed[0] is not None:  # the leaders measured again side by side decide
        (best, best_record), default = confirmed[0], confirmed[1] or default
    to_95 = None
    if best is not None:
        to_95 = next((t for t, _, so_far in history if so_far is not None
                      and so_far <= best / 0.95), len(history))
    if weights is not None:
        task_weights = dict(weights.get(key, {}))
    else:
        task_weights = {}
        for r in records:
            if isinstance(r.get("weights"), dict):
                task_weights.update({str(m): n for m, n in r["weights"].items()
                                     if isinstance(n, int) and not isinstance(n, bool)})
    flops = next((r["flops"] for r in ([best_record] if best_record else []) + records
                  if isinstance(r.get("flops"), (int, float)) and r["flops"] > 0), None)
    peak = record_peak(best_record or records[0], ghz)
    name = workload_name(records[0])
    return TaskSummary(key, name, label, len(records), errors, best, best_record, default,
                       flops, peak, to_95, task_weights, messages, history)


def _best_and_default(records) -> tuple:
    """((best median, its record) or None, the default's median or None) of ``records``."""
    timed = [(median_seconds(r), r) for r in records]
    timed = [(m, r) for m, r in timed if m is not None]
    best = min(timed, key=lambda item: item[0], default=None)
    default = next((m for m, r in timed if r.get("default") is True), None)
    return best, default


def _summarize_models(records, tasks, weights, several) -> list[ModelSummary]:
    by_group = {(t.key, t.target): t for t in tasks}
    models: dict[str, dict[str, int]] = {}
    for t in tasks:
        for model, count in t.weights.items():
            models.setdefault(model, {})[t.key] = count
    for key, per_model in (weights or {}).items():  # tasks of --model the log never tuned
        for model, count in per_model.items():
            models.setdefault(model, {})[key] = count
    labels = list(dict.fromkeys(t.target for t in tasks)) or [""]
    out = []
    for model, counts in models.items():
        for label in labels:
            if several and not any((key, label) in by_group for key in counts):
                continue
            name = f"{model} [{label}]" if several else model
            mine = [r for r in records if str(r.get("task")) in counts
                    and (not several or target_label(r) == label)]
            out.append(_summarize_model(name, counts, {k: by_group.get((k, label))
                                                       for k in counts}, mine))
    return out


def _summarize_model(name, counts, tasks, records) -> ModelSummary:
    def estimate(latency):
        if any(latency.get(k) is None for k in counts):
            return None
        return sum(n * latency[k] for k, n in counts.items())

    defaults = {k: t.default_seconds if t else None for k, t in tasks.items()}
    missing = [k for k, t in tasks.items() if t is None or t.best_seconds is None]
    best_so_far: dict[str, float] = {}
    timeline = []
    start = None
    for trial, r in enumerate(records, 1):
        key, median = str(r.get("task")), median_seconds(r)
        if median is not None and median < best_so_far.get(key, math.inf):
            best_so_far[key] = median
        when = record_time(r)
        start = start or when
        elapsed = (when - start).total_seconds() if when and start else None
        timeline.append((trial, elapsed, estimate({**defaults, **best_so_far})))
    final = estimate({k: t.best_seconds if t else None for k, t in tasks.items()})
    summary = ModelSummary(name, dict(counts), final, estimate(defaults), missing, timeline)
    if timeline and final:
        at_third = timeline[summary.third_trials - 1][2]
        summary.third = final / at_third if at_third else None
    return summary


# -- text ----------------------------------------------------------------------------------
def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.3f} s"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def format_errors(errors: dict[str, int], names: dict = ERROR_NAMES) -> str:
    order = [c for c in ERROR_NAMES if c in errors] + sorted(set(errors) - set(ERROR_NAMES))
    return ", ".join(f"{names.get(c, c)} {errors[c]}" for c in order) or "-"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _number(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


TABLE_COLUMNS = ("task", "key", "weight", "trials", "errors", "best", "GFLOP/s", "% peak",
                 "speed-up", "to 95%")


def table_rows(summary: Summary) -> list[tuple[str, ...]]:
    """One row of strings per task, in TABLE_COLUMNS order."""
    rows = []
    for t in summary.tasks:
        name = t.name + (f" [{t.target}]" if t.target else "")
        rows.append((name, t.key[:8], str(sum(t.weights.values())) if t.weights else "-",
                     str(t.trials), format_errors(t.errors), format_seconds(t.best_seconds),
                     _number(t.gflops, ".1f"), _number(t.percent_of_peak, ".0f"),
                     _number(t.speedup, ".2f") + ("x" if t.speedup else ""),
                     _number(t.trials_to_95, "d")))
    return rows


def model_line(m: ModelSummary) -> str:
    """One sentence: the model's estimate, its speed-up and the first third's share."""
    if m.estimate_seconds is None:
        line = (f"model {m.name}: no estimate, {len(m.missing)} of its "
                f"{plural(len(m.weights), 'task')} {'has' if len(m.missing) == 1 else 'have'} "
                "no measured schedule")
    else:
        line = f"model {m.name}: estimated latency {format_seconds(m.estimate_seconds)}"
        if m.speedup:
            line += (f" (default schedules {format_seconds(m.default_seconds)}, "
                     f"{m.speedup:.2f}x faster)")
    if m.third is not None:
        line += (f"; {100 * m.third:.0f}% of the final tuned speed within the first third "
                 f"of the trials ({m.third_trials} of {len(m.timeline)})")
    return line


def format_table(summary: Summary, title: str = "") -> str:
    """The text report: a header, one row per task, one line per model."""
    lines = []
    span = ""
    if summary.first_time and summary.last_time:
        seconds = (summary.last_time - summary.first_time).total_seconds()
        span = (f", {summary.first_time:%Y-%m-%d %H:%M} to {summary.last_time:%H:%M} "
                f"({format_duration(seconds)})")
    lines.append(f"{title + ': ' if title else ''}{plural(summary.records, 'record')}, "
                 f"{plural(len(summary.tasks), 'task')}{span}")
    for label in summary.targets:
        lines.append(f"target: {label}")
    rows = [TABLE_COLUMNS, *table_rows(summary)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_COLUMNS))]
    lines.append("")
    for row in rows:
        cells = [cell.ljust(w) if k in (0, 1, 4) else cell.rjust(w)
                 for k, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    peaks = sorted({round(t.peak_gflops, 1) for t in summary.tasks if t.peak_gflops})
    lines.append("")
    if peaks:
        lines.append("% peak: of " + ", ".join(f"{p:g}" for p in peaks) + " GFLOP/s, an "
                     "estimate: threads x FMA units (1 or 2) x 2 flops x float32 lanes x the "
                     "clock /proc/cpuinfo reports (over 100%: the cores run faster, turbo)")
    lines.append("to 95%: trials until the best so far was within 95% of the best speed")
    lines.append("best, speed-up: from the confirmation (the leaders and the default measured "
                 "again side by side at the end of a run) where there is one")
    if len(summary.models) > 1:
        lines.append("weight: occurrences of the task in all the models together")
    if summary.models:
        lines.append("")
        lines.extend(model_line(m) for m in summary.models)
    return "\n".join(lines) + "\n"


def render_html(summary: Summary, title: str = "tuning report") -> str:
    """One self-contained HTML page (inline SVG plots, no scripts, no network)."""
    from dlc.autotune.report_html import render

    return render(summary, title)


# -- schedules as code ---------------------------------------------------------------------
def trace_to_python(trace: dict) -> str:
    """A trace (``{"version": 1, "primitives": [...]}``) as Python lines calling the
    schedule API on ``sch``, a Schedule of the task's tensors; run, they replay it."""
    from dlc.tir.schedule.trace import Trace

    if not isinstance(trace, dict) or not isinstance(trace.get("primitives"), list):
        raise ScheduleError("a trace is {'version': 1, 'primitives': [...]}")
    return Trace(trace["primitives"]).to_python()
