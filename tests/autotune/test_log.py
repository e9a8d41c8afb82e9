"""Tuning logs (dlc/autotune/log.py): schema-2 records written a line at a time, read back
through torn lines, kills, malformed and old records, and filtered by target."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

import dlc
from dlc import te
from dlc.autotune.log import (
    SCHEMA_VERSION,
    LogWriter,
    ReadLog,
    best_records,
    make_record,
    measured,
    read_log,
)
from dlc.errors import DlcError, DlcWarning
from dlc.target import Target

ZNVER4 = "llvm -mcpu=znver4 -mattr=+avx2,+fma,+avx512f"
TRACE = {"version": 1, "primitives": []}


def record(task="t1", config=None, seconds=(1e-3,), error=None, target=ZNVER4, seed=0):
    return make_record(task, {"op": "dense", "inputs": [[[4, 4], "float32"]]}, "dense",
                       target, 2, {"mr": 4} if config is None else config, TRACE,
                       list(seconds), error, seed, flops=128.0)


def write(path, records):
    with LogWriter(path) as writer:
        for r in records:
            writer.append(r)


def without_line(records):
    return [{k: v for k, v in r.items() if k != "_line"} for r in records]


def read_quietly(path) -> ReadLog:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DlcWarning)
        return read_log(path)


# -- writing and reading back -------------------------------------------------------------
def test_round_trip_of_a_real_schedule_trace(tmp_path):
    A = te.placeholder((64, 64), "float32", name="A")
    B = te.compute((64, 64), lambda i, j: A[i, j] * 2, name="B")
    sch = dlc.Schedule([A, B], name="k")
    i, j = sch.get_loops(B)
    sch.split(j, factor=8)
    first = make_record("k1", {"op": "mul"}, "elementwise", "llvm -mcpu=znver4", 2,
                        {"vector": 8, "unroll": True, "order": "ij", "tile": None},
                        sch.trace, [2e-4, 1e-4, 3e-4], None, 7, flops=4096, default=True,
                        weights={"resnet": 3})
    second = record(error={"class": "timeout", "message": "no answer in 10 s"}, seconds=[])
    path = tmp_path / "log.jsonl"
    write(path, [first, second])
    log = read_log(path)
    assert log.skipped == []
    assert without_line(log.records) == [first, second]
    assert [r["_line"] for r in log.records] == [f"{path}:1", f"{path}:2"]
    assert first["schema"] == SCHEMA_VERSION and first["dlc_version"] == dlc.__version__
    assert first["target"] == {"string": "llvm -mcpu=znver4", "kind": "llvm",
                               "cpu": "znver4", "features": ""}
    assert first["default"] is True and "default" not in second
    # the stored trace replays to the same loop nest
    sch2 = dlc.Schedule([A, B], name="k")
    dlc.Trace(log.records[0]["trace"]["primitives"]).apply(sch2)
    assert str(sch2.trace) == str(sch.trace)
    # one sorted JSON object per line
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert lines[0] == json.dumps(first, sort_keys=True)


def test_host_target_records_its_cpu_name_and_features():
    r = record(target="llvm")
    host = Target.parse("llvm")
    assert r["target"]["cpu"] == host.mcpu and r["target"]["features"] == host.mattr
    assert r["target"]["cpu"]


@pytest.mark.parametrize("change, message", [
    (dict(seconds=[], error=None), "no 'seconds' and no 'error'"),
    (dict(seconds=[float("nan")]), "Out of range float values"),
    (dict(config={"mr": [4, 6]}), "'config' is not an object of JSON scalars"),
    (dict(error={"message": "boom"}), "'error' is not null or an object"),
])
def test_make_record_refuses_what_read_log_would_skip(change, message):
    with pytest.raises(DlcError, match=message):
        record(**change)


def test_each_record_is_on_disk_when_append_returns(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    path = tmp_path / "log.jsonl"
    with LogWriter(path) as writer:
        for n in range(3):
            writer.append(record(seed=n))
            # another reader sees every record while the writer is still open
            assert [r["seed"] for r in read_log(path).records] == list(range(n + 1))
            assert len(synced) == n + 1


def test_writer_strips_private_keys_and_refuses_invalid_records(tmp_path):
    path = tmp_path / "log.jsonl"
    write(path, [record()])
    (read,) = read_log(path).records
    write(path, [read])  # "_line" is not written back
    assert "_line" not in path.read_text()
    with LogWriter(path) as writer, pytest.raises(DlcError, match="no 'seconds'"):
        writer.append(dict(read, seconds=[]))
    with pytest.raises(DlcError, match="cannot write tuning log"):
        LogWriter(tmp_path)


# -- torn lines and killed writers --------------------------------------------------------
def test_torn_last_line_is_skipped_with_a_warning_and_appending_goes_on(tmp_path):
    path = tmp_path / "log.jsonl"
    write(path, [record(seed=0)])
    whole = json.dumps(record(seed=1), sort_keys=True)
    with open(path, "a") as f:
        f.write(whole[: len(whole) // 2])
    with pytest.warns(DlcWarning, match=r"log.jsonl:2: torn last line skipped"):
        log = read_log(path)
    assert [r["seed"] for r in log.records] == [0]
    assert log.skipped == [(f"{path}:2", "torn last line (a write was interrupted)")]
    # the next record starts on a line of its own: both records stay readable
    write(path, [record(seed=2)])
    with pytest.warns(DlcWarning, match=r"skipped 1 line: .*log.jsonl:2: not a JSON object"):
        log = read_log(path)
    assert [r["seed"] for r in log.records] == [0, 2]
    assert [where for where, _ in log.skipped] == [f"{path}:2"]


def test_a_log_killed_during_its_first_write_loads_empty(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(record())[:30])
    with pytest.warns(DlcWarning, match="torn last line"):
        assert read_log(path).records == []


def test_a_complete_last_record_without_newline_is_kept(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(record(seed=0)) + "\n" + json.dumps(record(seed=1)))
    log = read_log(path)
    assert [r["seed"] for r in log.records] == [0, 1] and log.skipped == []


def test_log_of_a_writer_killed_with_sigkill_loads_and_resumes(tmp_path):
    path = tmp_path / "log.jsonl"
    script = textwrap.dedent(f"""
        from dlc.autotune.log import LogWriter, make_record
        with LogWriter({str(path)!r}) as writer:
            n = 0
            while True:
                writer.append(make_record("t", {{"op": "dense"}}, "dense", {ZNVER4!r}, 1,
                                          {{"n": n}}, {TRACE!r}, [1e-3] * 200, None, n))
                n += 1
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 60
        while (not path.exists() or path.stat().st_size < 50_000) and child.poll() is None:
            assert time.monotonic() < deadline, "the writer wrote nothing"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    log = read_quietly(path)
    seeds = [r["seed"] for r in log.records]
    assert len(seeds) > 10 and seeds == list(range(len(seeds)))  # nothing lost but the last
    assert all(reason.startswith("torn last line") for _, reason in log.skipped)
    done = measured(log, "t", ZNVER4)
    assert len(done) == len(seeds)
    write(path, [record(task="t", config={"n": len(seeds)}, seed=len(seeds))])
    resumed = read_quietly(path)
    assert [r["seed"] for r in resumed.records] == seeds + [len(seeds)]


# -- reading malformed, old and newer logs ------------------------------------------------
@pytest.mark.parametrize("break_it, reason", [
    (lambda r: r.pop("task"), "no 'task'"),
    (lambda r: r.update(seconds="fast"), "'seconds' is not a list of non-negative numbers"),
    (lambda r: r.update(seconds=[-1.0]), "'seconds' is not a list of non-negative numbers"),
    (lambda r: r.update(target="llvm"), "'target' is not an object"),
    (lambda r: r["target"].pop("cpu"), "'target' is not an object"),
    (lambda r: r.update(trace={"version": 1}), "'trace' is not an object with a list"),
    (lambda r: r.update(threads=0), "'threads' is not a positive integer"),
    (lambda r: r.update(error="timeout"), "'error' is not null or an object"),
    (lambda r: r.update(weights={"m": "3"}), "'weights' is not an object of integers"),
    (lambda r: r.update(schema="2"), "'schema' is not an integer"),
])
def test_malformed_records_are_skipped_with_place_and_reason(tmp_path, break_it, reason):
    path = tmp_path / "log.jsonl"
    bad = record(seed=1)
    break_it(bad)
    path.write_text("\n".join(json.dumps(r) for r in (record(seed=0), bad, record(seed=2)))
                    + "\n[1, 2]\n\n")
    with pytest.warns(DlcWarning, match=f"skipped 2 lines: {path}:2: ") as caught:
        log = read_log(path)
    assert len(caught) == 1
    assert [r["seed"] for r in log.records] == [0, 2]
    assert log.skipped[0][0] == f"{path}:2" and log.skipped[0][1].startswith(reason)
    assert log.skipped[1] == (f"{path}:4", "not a JSON object")


def test_a_damaged_middle_line_is_skipped(tmp_path):
    path = tmp_path / "log.jsonl"
    good = [json.dumps(record(seed=n)).encode() for n in range(2)]
    path.write_bytes(good[0] + b"\n\xff\x00\xfe garbage\n\x00\x00\x00\n" + good[1] + b"\r\n")
    with pytest.warns(DlcWarning, match="skipped 2 lines: .*:2: not UTF-8 text; .*:3: not a"):
        log = read_log(path)
    assert [r["seed"] for r in log.records] == [0, 1]
    assert [r["_line"] for r in log.records] == [f"{path}:1", f"{path}:4"]


def test_a_newer_schema_is_skipped_with_its_reason(tmp_path):
    path = tmp_path / "log.jsonl"
    newer = dict(record(seed=1), schema=3, shiny="new field")
    path.write_text(json.dumps(record(seed=0)) + "\n" + json.dumps(newer) + "\n")
    with pytest.warns(DlcWarning, match="schema 3 is newer than this dlc reads"):
        log = read_log(path)
    assert [r["seed"] for r in log.records] == [0]
    assert log.skipped == [(f"{path}:2", "schema 3 is newer than this dlc reads (2); "
                                         "upgrade dlc to use it")]


def schema1(task="old", target="llvm -mcpu=znver4 -num-threads=4", seconds=(1e-4,),
            error=None):
    return {"version": 1, "task": task, "workload": {"op": "Add"}, "target": target,
            "trace": {"version": 1, "primitives": [{"primitive": "split"}]},
            "result": {"seconds": list(seconds), "error": error},
            "time": "2026-11-23T10:00:00"}


def test_schema1_records_are_upgraded_on_read_but_not_applied(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text(json.dumps(schema1()) + "\n"
                    + json.dumps(schema1(task="crashed", seconds=(), error="segfault")) + "\n"
                    + json.dumps(schema1(target="llvm -bogus=1")) + "\n")
    with pytest.warns(DlcWarning, match="schema-1 record's target: unknown option -bogus"):
        log = read_log(path)
    old, crashed = log.records
    assert old["schema"] == SCHEMA_VERSION and old["upgraded_from"] == 1
    assert old["target"] == {"string": "llvm -mcpu=znver4 -num-threads=4", "kind": "llvm",
                             "cpu": "znver4", "features": ""}
    assert old["threads"] == 4 and old["config"] == {} and old["seed"] is None
    assert old["trace"] == schema1()["trace"] and old["seconds"] == [1e-4]
    assert crashed["error"] == {"class": "unknown", "message": "segfault"}
    # upgraded records are valid schema 2: a writer may copy them to a new log
    write(tmp_path / "copy.jsonl", log.records)
    assert without_line(read_log(tmp_path / "copy.jsonl").records) == without_line(log.records)
    best, reasons = best_records(log, "llvm -mcpu=znver4")
    assert best == {}
    assert reasons == ["ignored 2 records of schema 1 whose task keys predate the canonical "
                       "task key (retune)"]
    assert measured(log, "old", "llvm -mcpu=znver4") == {}


@pytest.mark.parametrize("content, message", [
    (b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4'}\n", ":1: not UTF-8 text: {path} is not a "
                                                       "tuning log"),
    (b"\x89PNG\r\n\x1a\n", ":1: not UTF-8 text: {path} is not a tuning log"),
    (b"\x00" * 4096, ":1: not a JSON object (Expecting value): {path} is not a tuning log"),
    (b"hello\nworld\n", ":1: not a JSON object (Expecting value): {path} is not a tuning log"),
    (b'{"name": "dlc", "version": "1.0"}\n', ":1: unsupported tuning record version '1.0'"),
    (b'{"name": "dlc"}\n', ":1: no 'schema': not a tuning record: {path} is not a tuning log"),
])
def test_a_file_that_is_not_a_log_is_an_error(tmp_path, content, message):
    path = tmp_path / "log.jsonl"
    path.write_bytes(content)
    with pytest.raises(DlcError) as caught:
        read_log(path)
    assert str(caught.value).startswith(str(path))
    assert message.format(path=path) in str(caught.value)


def test_missing_log_directory_and_empty_log(tmp_path):
    with pytest.raises(DlcError, match="cannot read tuning log .*absent.jsonl: No such file"):
        read_log(tmp_path / "absent.jsonl")
    with pytest.raises(DlcError, match="is a directory, not a tuning log"):
        read_log(tmp_path)
    (tmp_path / "empty.jsonl").write_text("")
    assert read_log(tmp_path / "empty.jsonl") == ReadLog([], [])


# -- choosing the best records --------------------------------------------------------------
def test_best_is_the_lowest_median_among_error_free_records_of_the_target(tmp_path):
    records = [
        record("a", {"mr": 1}, seconds=[5.0, 1.0, 1.0]),          # median 1.0
        record("a", {"mr": 2}, seconds=[0.1, 3.0, 3.0]),          # fastest run, median 3.0
        record("a", {"mr": 3}, seconds=[0.5],                     # stopped early: never
               error={"class": "stopped_early", "message": ""}),
        record("a", {"mr": 4}, seconds=[0.01], error="wrong_result"),
        record("a", {"mr": 5}, seconds=[1.0]),                    # a tie: the first stays
        record("b", {"mr": 1}, seconds=[], error="runtime_crash"),  # no valid record
        record("c", {"mr": 1}, seconds=[2.0], target=ZNVER4.replace("+avx2,+fma,+avx512f",
                                                                    "+fma,-sse4a,+avx512f,+avx2")),
    ]
    path = tmp_path / "log.jsonl"
    write(path, records)
    for given in (path, str(path), read_log(path), read_log(path).records):
        best, reasons = best_records(given, ZNVER4)
        assert reasons == []
        assert sorted(best) == ["a", "c"]  # feature order and disabled features do not matter
        assert best["a"]["config"] == {"mr": 1} and best["a"]["_line"] == f"{path}:1"


def test_records_of_other_targets_are_ignored_with_counts_and_reasons():
    records = [
        record("a", seconds=[1.0]),
        record("a", seconds=[0.1], target="llvm -mcpu=sapphirerapids -mattr=+avx2,+fma"),
        record("a", seconds=[0.1], target="llvm -mcpu=sapphirerapids -mattr=+avx2"),
        record("a", seconds=[0.1], target="llvm -mcpu=icelake-server -mattr=+avx2"),
        record("a", seconds=[0.1], target="llvm -mcpu=znver4 -mattr=+avx2,+fma"),
        record("a", seconds=[0.1], target="llvm -mcpu=znver4 -mattr=+avx2,+fma,+avx512f,"
                                          "+avx512bw,+avx512vl,+avx512dq,+avx512cd"),
        record("a", seconds=[0.1], target="cuda -arch=sm_90"),
    ]
    best, reasons = best_records(records, ZNVER4)
    assert best["a"]["seconds"] == [1.0]
    assert reasons == [
        "ignored 1 record for another target kind (cuda; this target is llvm)",
        "ignored 3 records for another CPU (2 sapphirerapids, 1 icelake-server; this target "
        "is znver4)",
        "ignored 2 records for another CPU feature set on znver4 (records have +avx512bw "
        "+avx512cd +avx512dq +avx512vl, records lack +avx512f)",
    ]
    best, reasons = best_records(records, "cuda -arch=sm_90")
    assert best["a"]["target"]["kind"] == "cuda" and len(reasons) == 1


def test_measured_lists_the_configurations_to_skip_on_resume():
    records = [
        record("a", {"mr": 1}, seconds=[], error="timeout"),
        record("a", {"mr": 1}, seconds=[2.0]),
        record("a", {"mr": 1}, seconds=[3.0]),
        record("a", {"mr": 2, "kc": 64}, seconds=[], error="build_error"),
        record("b", {"mr": 3}, seconds=[1.0]),
        record("a", {"mr": 4}, seconds=[1.0], target="llvm -mcpu=skylake"),
    ]
    done = measured(records, "a", ZNVER4)
    assert list(done) == ['{"mr": 1}', '{"kc": 64, "mr": 2}']
    assert done['{"mr": 1}']["seconds"] == [2.0]  # the fastest error-free measurement
    assert done['{"kc": 64, "mr": 2}']["error"]["class"] == "build_error"
    assert list(measured(records, "a", "llvm -mcpu=skylake")) == ['{"mr": 4}']
