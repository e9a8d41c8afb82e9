"""Tuning logs: one versioned JSON object per line, each a measured schedule of a task.

    {"version": 1, "task": "<sha1 of the workload>", "workload": {...},
     "target": "llvm -mcpu=znver4", "trace": {"version": 1, "primitives": [...]},
     "result": {"seconds": [1.2e-4, ...], "error": null}, "time": "2026-11-23T10:00:00"}

Records with an ``error`` (a candidate that crashed or timed out) are kept in the log and
never chosen. ``best_records`` picks, per task, the record with the lowest median time.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import time

from dlc.errors import DlcError

LOG_VERSION = 1


def task_key(workload: dict) -> str:
    """A stable identifier of a kernel's workload (op, attributes, input/output types)."""
    text = json.dumps(workload, sort_keys=True, default=_jsonable)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def append_record(path, workload: dict, target: str, trace_json: str, seconds=None,
                  error: str | None = None) -> dict:
    """Append one measurement to a log (the file is created if needed)."""
    record = {"version": LOG_VERSION, "task": task_key(workload), "workload": workload,
              "target": target, "trace": json.loads(trace_json),
              "result": {"seconds": list(seconds or []), "error": error},
              "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True, default=_jsonable) + "\n")
    return record


def read_records(path) -> list:
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
    except OSError as err:
        raise DlcError(f"cannot read tuning log {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise DlcError(f"{path} is not a tuning log (not UTF-8 text)") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DlcError(f"{path}:{number}: not a JSON object ({err.msg})") from None
        if not isinstance(record, dict) or record.get("version") != LOG_VERSION:
            raise DlcError(f"{path}:{number}: unsupported tuning record (expected version "
                           f"{LOG_VERSION})")
        for key, typ in (("task", str), ("trace", dict), ("result", dict)):
            if not isinstance(record.get(key), typ):
                raise DlcError(f"{path}:{number}: tuning record has no {key!r} "
                               f"({typ.__name__})")
        seconds = record["result"].get("seconds") or []
        if not isinstance(seconds, list) or not all(
                isinstance(t, (int, float)) and not isinstance(t, bool) for t in seconds):
            raise DlcError(f"{path}:{number}: tuning record's result.seconds is not a list "
                           "of numbers")
        record["_line"] = f"{path}:{number}"
        records.append(record)
    return records


def best_records(path, target_kind: str = "llvm") -> dict:
    """Task key -> the fastest error-free record for the target kind."""
    best: dict = {}
    for record in read_records(path):
        result = record["result"]
        if result.get("error") or not result.get("seconds"):
            continue
        if str(record.get("target", "llvm")).split()[0] != target_kind:
            continue
        median = statistics.median(result["seconds"])
        current = best.get(record["task"])
        if current is None or median < current[0]:
            best[record["task"]] = (median, record)
    return {task: rec for task, (_, rec) in best.items()}
