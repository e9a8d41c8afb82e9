"""Tuning logs: one JSON object per line, each one measurement of one configuration.

A schema-2 record (the format and its versioning: docs/reference/tuning_log.md)::

    {"schema": 2, "dlc_version": "0.1.0", "time": "2026-12-07T18:00:00Z",
     "task": "<key>", "workload": {...}, "template": "dense",
     "target": {"string": "llvm -num-threads=2", "kind": "llvm", "cpu": "znver4",
                "features": "+avx2,+fma,..."},
     "threads": 2, "config": {"mr": 6}, "trace": {"version": 1, "primitives": [...]},
     "seconds": [1.2e-4, ...], "error": null, "seed": 0, "flops": 1.2e9}

``LogWriter`` appends one line per record and flushes and fsyncs it, so a killed tuner
loses at most the record it was writing; ``read_log`` skips that torn last line with a
warning, skips malformed lines with their place and reason, and upgrades schema-1
records. ``best_records`` picks per task the fastest error-free record for a target and
says, one line per reason, which records it ignored; ``measured`` lists a task's measured
configurations so that a second run resumes instead of measuring them again.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field

from dlc.errors import DlcError, DlcWarning, TargetError
from dlc.target import Target

SCHEMA_VERSION = 2
_SCHEMA1 = 1
_SHOWN = 3  # skipped lines named in a warning


# -- writing ------------------------------------------------------------------------------
def target_json(target) -> dict:
    """A target's identity in a record: its string, kind, CPU name and feature string
    (for CUDA the architecture is the "cpu" and the features are empty)."""
    target = Target.parse(target)
    if target.kind == "llvm":
        cpu, features = target.mcpu, target.mattr
    else:
        cpu, features = str(target.options.get("arch", "")), ""
    return {"string": str(target), "kind": target.kind, "cpu": cpu, "features": features}


def make_record(task_key: str, workload: dict, template: str, target, threads: int | None,
                config: dict, trace, seconds, error, seed: int | None, flops=None,
                features=None, weights=None, default: bool = False,
                confirmation: bool = False) -> dict:
    """A schema-2 record, checked and in its JSON form (equal to what ``read_log`` returns).

    ``target`` is a Target or its string; ``trace`` a Trace, its JSON text or dict;
    ``error`` None, an error class ("timeout") or {"class": ..., "message": ...};
    ``default`` marks the measurement of the space's default configuration;
    ``confirmation`` a re-measurement of a leading configuration (or the default) at the
    end of a run, interleaved with the other leaders (see dlc.autotune.tuner).
    """
    from dlc import __version__

    if hasattr(trace, "to_json"):
        trace = trace.to_json()
    if isinstance(trace, str):
        trace = json.loads(trace)
    if isinstance(error, str):
        error = {"class": error, "message": ""}
    record = {"schema": SCHEMA_VERSION, "dlc_version": __version__,
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "task": task_key, "workload": workload, "template": template,
              "target": target_json(target), "threads": threads, "config": config,
              "trace": trace, "seconds": [float(t) for t in seconds or []], "error": error,
              "seed": seed}
    optional = {"flops": flops, "features": features, "weights": weights}
    record.update((k, v) for k, v in optional.items() if v is not None)
    if default:
        record["default"] = True
    if confirmation:
        record["confirmation"] = True
    try:
        record = json.loads(json.dumps(record, default=_jsonable, allow_nan=False))
    except ValueError as err:
        raise DlcError(f"tuning record for task {task_key}: {err}") from None
    reason = check_record(record)
    if reason:
        raise DlcError(f"not a valid tuning record: {reason}")
    return record


def _jsonable(value):
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    return str(value)


class LogWriter:
    """Appends records to a log, one line each, written, flushed and fsynced at once.

    A log whose last line is torn (a writer killed mid-line) gets a newline before the
    first new record, so the fragment stays a line of its own (skipped when read).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            torn = _ends_torn(self.path)
        except OSError as err:
            raise DlcError(f"cannot write tuning log {self.path}: "
                           f"{err.strerror or err}") from None
        self._prefix = b"\n" if torn else b""

    def append(self, record: dict) -> None:
        """Write one record (keys starting with "_", such as "_line", are not written)."""
        record = {k: v for k, v in record.items() if not k.startswith("_")}
        reason = check_record(record)
        if reason:
            raise DlcError(f"not a valid tuning record: {reason}")
        data = self._prefix + (json.dumps(record, sort_keys=True, allow_nan=False)
                               + "\n").encode("ascii")
        if self._fd is None:
            raise DlcError(f"tuning log {self.path} is closed")
        try:
            while data:
                data = data[os.write(self._fd, data):]
            os.fsync(self._fd)
        except OSError as err:
            raise DlcError(f"cannot write tuning log {self.path}: "
                           f"{err.strerror or err}") from None
        self._prefix = b""

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _ends_torn(path: str) -> bool:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


# -- checking -----------------------------------------------------------------------------
def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, (str, bool)) or _is_number(v)


def _check_target(t) -> bool:
    return isinstance(t, dict) and all(isinstance(t.get(k), str)
                                       for k in ("string", "kind", "cpu", "features"))


def _check_trace(t) -> bool:
    return (isinstance(t, dict) and isinstance(t.get("primitives"), list)
            and all(isinstance(p, dict) for p in t["primitives"]))


def _check_error(e) -> bool:
    return e is None or (isinstance(e, dict) and isinstance(e.get("class"), str)
                         and isinstance(e.get("message", ""), str))


# field -> (check, what it must be); the optional fields may be absent
_REQUIRED = {
    "schema": (lambda v: v == SCHEMA_VERSION, f"{SCHEMA_VERSION}"),
    "dlc_version": (lambda v: v is None or isinstance(v, str), "a string"),
    "time": (lambda v: isinstance(v, str), "a string"),
    "task": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "workload": (lambda v: isinstance(v, dict), "an object"),
    "template": (lambda v: isinstance(v, str), "a string"),
    "target": (_check_target, 'an object of strings "string", "kind", "cpu", "features"'),
    "threads": (lambda v: v is None or (_is_int(v) and v >= 1), "a positive integer"),
    "config": (lambda v: isinstance(v, dict) and all(map(_is_scalar, v.values())),
               "an object of JSON scalars"),
    "trace": (_check_trace, 'an object with a list of "primitives"'),
    "seconds": (lambda v: isinstance(v, list) and all(_is_number(t) and t >= 0 for t in v),
                "a list of non-negative numbers"),
    "error": (_check_error, 'null or an object with a string "class"'),
    "seed": (lambda v: v is None or _is_int(v), "an integer"),
}
_OPTIONAL = {
    "flops": (lambda v: v is None or (_is_number(v) and v >= 0), "a non-negative number"),
    "features": (lambda v: isinstance(v, dict), "an object"),
    "weights": (lambda v: isinstance(v, dict) and all(_is_int(n) for n in v.values()),
                "an object of integers"),
    "default": (lambda v: isinstance(v, bool), "true or false"),
    "confirmation": (lambda v: isinstance(v, bool), "true or false"),
    "upgraded_from": (_is_int, "an integer"),
}


def check_record(record: dict) -> str | None:
    """Why ``record`` is not a valid schema-2 record, or None when it is."""
    for name, (check, what) in _REQUIRED.items():
        if name not in record:
            return f"no {name!r}"
        if not check(record[name]):
            return f"{name!r} is not {what}"
    for name, (check, what) in _OPTIONAL.items():
        if name in record and not check(record[name]):
            return f"{name!r} is not {what}"
    if record["error"] is None and not record["seconds"]:
        return "no 'seconds' and no 'error'"
    return None


# -- reading ------------------------------------------------------------------------------
@dataclass
class ReadLog:
    """The valid records of a log (schema 2, older ones upgraded), in file order, each with
    "_line" ("path:line"), and the skipped lines as ("path:line", reason)."""

    records: list = field(default_factory=list)
    skipped: list = field(default_factory=list)


def read_log(path) -> ReadLog:
    """Read a tuning log. Unusable lines are skipped with a DlcWarning (a torn last line,
    the trace of a killed writer, gets its own); a file that is no log raises DlcError."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise DlcError(f"{path} is a directory, not a tuning log")
    result, records_seen, problem, torn = ReadLog(), False, None, None
    try:
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                where = f"{path}:{number}"
                obj, reason = _decode(raw)
                if reason and not raw.endswith(b"\n") and raw.lstrip().startswith(b"{"):
                    torn, reason = where, "torn last line (a write was interrupted)"
                elif reason:
                    problem = problem or f"{where}: {reason}"
                elif obj is not None:
                    records_seen = records_seen or any(_is_int(obj.get(k))
                                                       for k in ("schema", "version"))
                    record, reason = _parse(obj)
                    if record is not None:
                        record["_line"] = where
                        result.records.append(record)
                    else:
                        problem = problem or f"{where}: {reason}"
                if reason:
                    result.skipped.append((where, reason))
    except OSError as err:
        raise DlcError(f"cannot read tuning log {path}: {err.strerror or err}") from None
    if problem and not records_seen:
        raise DlcError(f"{problem}: {path} is not a tuning log")
    _warn_skipped(path, result.skipped, torn)
    return result


def _decode(raw: bytes) -> tuple[dict | None, str | None]:
    """A line's JSON object (None for a blank line), or the reason it has none."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    if not text.strip():
        return None, None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        return None, f"not a JSON object ({err.msg})"
    return (obj, None) if isinstance(obj, dict) else (None, "not a JSON object")


def _warn_skipped(path: str, skipped: list, torn: str | None) -> None:
    if torn:
        warnings.warn(f"{torn}: torn last line skipped (a tuning run was killed while "
                      "writing it; that measurement is lost and is made again on resume)",
                      DlcWarning, stacklevel=3)
    other = [(w, r) for w, r in skipped if w != torn]
    if other:
        named = "; ".join(f"{w}: {r}" for w, r in other[:_SHOWN])
        more = f" (and {len(other) - _SHOWN} more)" if len(other) > _SHOWN else ""
        warnings.warn(f"{path}: skipped {_n(len(other), 'line')}: {named}{more}",
                      DlcWarning, stacklevel=3)


def _parse(obj: dict) -> tuple[dict | None, str | None]:
    """(record, None) for a readable record, upgraded to schema 2; else (None, reason)."""
    if "schema" in obj:
        schema = obj["schema"]
        if not _is_int(schema):
            return None, f"'schema' is not an integer: {schema!r}"
        if schema > SCHEMA_VERSION:
            return None, (f"schema {schema} is newer than this dlc reads ({SCHEMA_VERSION}); "
                          "upgrade dlc to use it")
        if schema != SCHEMA_VERSION:
            return None, f"unknown schema {schema}"
        reason = check_record(obj)
        return (None, reason) if reason else (obj, None)
    if "version" in obj:
        if obj["version"] != _SCHEMA1:
            return None, (f"unsupported tuning record version {obj['version']!r} (schema 1 "
                          "records have \"version\": 1, newer ones a \"schema\")")
        return _upgrade_schema1(obj)
    return None, "no 'schema': not a tuning record"


def _upgrade_schema1(obj: dict) -> tuple[dict | None, str | None]:
    """A schema-1 record as schema 2: no template, configuration, seed or dlc version (empty
    or null), the target as its string said (no CPU name when it gave none)."""
    for key, typ in (("task", str), ("trace", dict), ("result", dict)):
        if not isinstance(obj.get(key), typ):
            return None, f"schema-1 record has no {key!r} ({typ.__name__})"
    result = obj["result"]
    error = result.get("error")
    if error is not None and not isinstance(error, str):
        return None, "schema-1 record's result.error is not a string"
    try:
        target = Target.parse(obj.get("target", "llvm"))
    except (TargetError, TypeError) as err:
        return None, f"schema-1 record's target: {err}"
    record = {"schema": SCHEMA_VERSION, "upgraded_from": _SCHEMA1, "dlc_version": None,
              "time": str(obj.get("time", "")), "task": obj["task"],
              "workload": obj["workload"] if isinstance(obj.get("workload"), dict) else {},
              "template": "",
              "target": {"string": str(target), "kind": target.kind,
                         "cpu": str(target.options.get("mcpu", "")),
                         "features": str(target.options.get("mattr", ""))},
              "threads": target.num_threads, "config": {}, "trace": obj["trace"],
              "seconds": result.get("seconds") or [],
              "error": None if error is None else {"class": "unknown", "message": error},
              "seed": None}
    reason = check_record(record)
    return (None, f"schema-1 record: {reason}") if reason else (record, None)


# -- choosing -----------------------------------------------------------------------------
def _features(text: str) -> frozenset:
    """The enabled features of an LLVM feature string ("+avx2,-avx512f" -> {"avx2"})."""
    words = (w.strip() for w in text.split(","))
    return frozenset(w.lstrip("+") for w in words if w and not w.startswith("-"))


def _records_of(records) -> list:
    if isinstance(records, (str, os.PathLike)):
        return read_log(records).records
    if isinstance(records, ReadLog):
        return records.records
    return list(records)


def _mismatch(record: dict, here: dict, here_features: frozenset) -> tuple | None:
    """Why a record cannot be applied to the target ``here``: (reason kind, detail)."""
    if record.get("upgraded_from") == _SCHEMA1:
        return ("schema1", None)
    there = record["target"]
    if there["kind"] != here["kind"]:
        return ("kind", there["kind"])
    if there["cpu"] != here["cpu"]:
        return ("cpu", there["cpu"] or "unnamed")
    if _features(there["features"]) != here_features:
        return ("features", _features(there["features"]))
    return None


def best_records(records, target) -> tuple[dict, list]:
    """Task key -> the error-free record with the lowest median time among those for
    ``target`` (same kind, CPU name and set of enabled features), the first one on a tie;
    and one line per reason for the records ignored (another kind, CPU or feature set,
    schema 1). A task whose leaders were confirmed (``confirmation`` records, measured
    again side by side at the end of a run) takes the best confirmation: the search's own
    minimum favours the luckiest single measurement. ``records``: a ReadLog, a list of
    records, or a log's path."""
    records = _records_of(records)
    here = target_json(target)
    here_features = _features(here["features"])
    best, medians, ignored = {}, {}, {}
    for record in records:
        why = _mismatch(record, here, here_features)
        if why:
            ignored.setdefault(why[0], []).append(why[1])
            continue
        if record["error"] is not None:
            continue
        median = statistics.median(record["seconds"])
        key = record["task"]
        rank = (not record.get("confirmation", False), median)
        if key not in medians or rank < medians[key]:
            best[key], medians[key] = record, rank
    return best, _reasons(ignored, here, here_features)


def _reasons(ignored: dict, here: dict, here_features: frozenset) -> list:
    lines = []
    if "schema1" in ignored:
        lines.append(f"ignored {_n(len(ignored['schema1']), 'record')} of schema 1 whose "
                     "task keys predate the canonical task key (retune)")
    if "kind" in ignored:
        lines.append(f"ignored {_n(len(ignored['kind']), 'record')} for another target kind "
                     f"({_counted(ignored['kind'])}; this target is {here['kind']})")
    if "cpu" in ignored:
        lines.append(f"ignored {_n(len(ignored['cpu']), 'record')} for another CPU "
                     f"({_counted(ignored['cpu'])}; this target is {here['cpu']})")
    if "features" in ignored:
        extra = sorted(set().union(*ignored["features"]) - here_features)
        missing = sorted(here_features - frozenset.intersection(*ignored["features"]))
        diff = ", ".join(part for part in (_listed("records have", extra),
                                           _listed("records lack", missing)) if part)
        lines.append(f"ignored {_n(len(ignored['features']), 'record')} for another CPU "
                     f"feature set on {here['cpu']} ({diff})")
    return lines


def _counted(names: list) -> str:
    counts = Counter(names)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{n} {name}" for name, n in counts.most_common())


def _listed(what: str, names: list, shown: int = 4) -> str:
    if not names:
        return ""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"{what} " + " ".join("+" + n for n in names[:shown]) + more


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def measured(records, task_key: str, target) -> dict:
    """The configurations of ``task_key`` already measured for ``target``, as
    ``json.dumps(config, sort_keys=True)`` -> record (the fastest error-free one when a
    configuration was measured more than once, else the first): a resumed run skips them.
    Failed measurements count too: a configuration that crashed is not tried again."""
    here = target_json(target)
    here_features = _features(here["features"])
    found, medians = {}, {}
    for record in _records_of(records):
        if record["task"] != task_key or _mismatch(record, here, here_features):
            continue
        key = json.dumps(record["config"], sort_keys=True)
        median = math.inf if record["error"] else statistics.median(record["seconds"])
        if key not in found or median < medians[key]:
            found[key], medians[key] = record, median
    return found
