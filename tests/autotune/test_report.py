"""Tuning reports (dlc.autotune.report, report_html and ``dlc report``): every column's
numbers on a hand-made log, model estimates over the tuning, torn logs, the HTML page
(self-contained, rendered by headless Chromium with its plots), and winning schedules
printed as Python that replays them."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import types

import pytest
from helpers import matmul

import dlc
from dlc import cli, te
from dlc.autotune import report
from dlc.errors import DlcError, ScheduleError

TARGET = {"string": "llvm -num-threads=2", "kind": "llvm", "cpu": "znver3",
          "features": "+64bit,+avx,+avx2,+fma,-avx512f"}
PEAK = 2 * 2 * 2 * 8 * 2.0  # 2 threads x 2 FMA units x 2 flops x 8 lanes (avx2) x 2 GHz
TRACE = {"version": 1, "primitives": [
    {"primitive": "split", "stage": "C", "loop": "i", "factor": 4, "nparts": None},
    {"primitive": "vectorize", "stage": "C", "loop": "i.inner"}]}


def rec(task, seconds=(), error=None, *, default=False, flops=None, weights=None, n=0,
        target=TARGET, threads=2, template="dense", config=None):
    """One schema-2 record as the log writes it; ``n`` spaces their times 10 s apart."""
    r = {"schema": 2, "dlc_version": "0.1.0", "time": f"2026-12-07T18:{n // 6:02d}:"
         f"{n % 6 * 10:02d}Z", "task": task, "template": template,
         "workload": {"op": template, "template": template,
                      "inputs": [[[64, 256], "float32"], [[256, 128], "float32"]],
                      "outputs": [[[64, 128], "float32"]], "attrs": {}},
         "target": target, "threads": threads, "config": config or {"mr": n},
         "trace": TRACE, "seconds": list(seconds),
         "error": None if error is None else {"class": error, "message": f"{error} at {n}"},
         "seed": 0, "flops": flops}
    if default:
        r["default"] = True
    if weights is not None:
        r["weights"] = weights
    return r


def crafted_log() -> list[dict]:
    """Task A (dense, 2 MFLOP): a default, every error class, a best of 100 us. Task B
    (1e5 flops): three valid trials. Task C: only errors. Interleaved like a scheduler."""
    a = dict(task="a" * 40, flops=2e6, weights={"m1": 1})
    b = dict(task="b" * 40, flops=1e5, weights={"m1": 2, "m2": 1, "m3": 1}, template="relu")
    c = dict(task="c" * 40, flops=3e6, weights={"m3": 1}, template="conv2d")
    entries = [
        (a, dict(seconds=[4e-4, 5e-4, 4.5e-4], default=True)),  # A1: 450 us, default
        (b, dict(seconds=[1e-5], default=True)),                # B1: 10 us, default
        (a, dict(error="build_error")),                         # A2
        (a, dict(seconds=[2e-4] * 3)),                          # A3: 200 us
        (b, dict(seconds=[2e-5])),                              # B2
        (a, dict(error="runtime_crash")),                       # A4
        (a, dict(seconds=[1.05e-4])),                           # A5: within 95% of 100 us
        (b, dict(seconds=[5e-6])),                              # B3: best of B
        (a, dict(error="timeout")),                             # A6
        (a, dict(seconds=[1e-4, 1e-4, 3e-4])),                  # A7: best of A, 100 us
        (a, dict(error="wrong_result")),                        # A8
        (a, dict(seconds=[9e-3], error="stopped_early")),       # A9: slow, stopped early
        (c, dict(error="build_error")),
        (c, dict(error="build_error")),
    ]
    return [rec(**task, **trial, n=n) for n, (task, trial) in enumerate(entries)]


def write_log(path, records, extra: str = "") -> str:
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + "\n")
        f.write(extra)
    return str(path)


def run_cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


# -- per-task numbers ----------------------------------------------------------------------
def test_every_column_of_every_task():
    summary = report.summarize(crafted_log(), ghz=2.0)
    a, b, c = summary.tasks
    assert summary.records == 14 and summary.targets == [report.target_label(crafted_log()[0])]
    assert a.name == "dense(64x256, 256x128) -> 64x128" and a.target == ""
    assert a.trials == 9
    assert a.errors == {"build_error": 1, "runtime_crash": 1, "timeout": 1,
                        "wrong_result": 1, "stopped_early": 1}
    assert a.best_seconds == pytest.approx(1e-4) and a.best_record["config"] == {"mr": 9}
    assert a.default_seconds == pytest.approx(4.5e-4)
    assert a.speedup == pytest.approx(4.5)
    assert a.gflops == pytest.approx(2e6 / 1e-4 / 1e9)        # 20 GFLOP/s
    assert a.peak_gflops == pytest.approx(PEAK)               # 128 GFLOP/s
    assert a.percent_of_peak == pytest.approx(100 * 20 / PEAK)
    assert a.trials_to_95 == 5                                # 105 us <= 100 us / 0.95
    assert a.messages["timeout"] == "timeout at 8"
    assert [h[2] for h in a.history] == pytest.approx(
        [4.5e-4, 4.5e-4, 2e-4, 2e-4, 1.05e-4, 1.05e-4, 1e-4, 1e-4, 1e-4])

    assert (b.trials, b.errors, b.trials_to_95) == (3, {}, 3)
    assert b.best_seconds == pytest.approx(5e-6) and b.speedup == pytest.approx(2.0)
    assert b.gflops == pytest.approx(20.0) and b.weights == {"m1": 2, "m2": 1, "m3": 1}

    assert (c.trials, c.errors) == (2, {"build_error": 2})
    assert c.best_seconds is c.default_seconds is c.speedup is c.gflops is None
    assert c.trials_to_95 is None and c.best_record is None


def test_text_table_shows_the_numbers():
    text = report.format_table(report.summarize(crafted_log(), ghz=2.0), title="t.jsonl")
    lines = text.splitlines()
    assert lines[0] == "t.jsonl: 14 records, 3 tasks, 2026-12-07 18:00 to 18:02 (2m10s)"
    header = next(line for line in lines if line.startswith("task"))
    assert re.split(r"\s{2,}", header) == list(report.TABLE_COLUMNS)
    row_a = next(line for line in lines if line.startswith("dense("))
    assert re.split(r"\s{2,}", row_a) == [
        "dense(64x256, 256x128) -> 64x128", "aaaaaaaa", "1", "9",
        "build 1, crash 1, timeout 1, wrong 1, stopped 1", "100.0 us", "20.0", "16", "4.50x",
        "5"]
    row_c = next(line for line in lines if line.startswith("conv2d("))
    assert re.split(r"\s{2,}", row_c)[3:] == ["2", "build 2", "-", "-", "-", "-", "-"]
    assert "% peak: of 128 GFLOP/s" in text
    assert ("model m1: estimated latency 110.0 us (default schedules 470.0 us, 4.27x faster); "
            "50% of the final tuned speed within the first third of the trials (4 of 12)"
            in lines)
    assert "model m3: no estimate, 1 of its 2 tasks has no measured schedule" in text


def test_model_estimates_over_the_tuning():
    m1, m2, m3 = report.summarize(crafted_log(), ghz=2.0).models
    # m1 = A + 2 B: tuned 100 us + 2 x 5 us; default schedules 450 us + 2 x 10 us
    assert m1.weights == {"a" * 40: 1, "b" * 40: 2}
    assert m1.estimate_seconds == pytest.approx(1.1e-4)
    assert m1.default_seconds == pytest.approx(4.7e-4)
    assert m1.speedup == pytest.approx(4.7 / 1.1)
    assert [t for t, _, _ in m1.timeline] == list(range(1, 13))
    assert [s for _, s, _ in m1.timeline] == [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110]
    # after trial 1 task B is not measured yet: its default schedule stands in
    assert m1.timeline[0][2] == pytest.approx(4.7e-4)
    assert m1.timeline[3][2] == pytest.approx(2e-4 + 2e-5)    # first third: 4 of 12 trials
    assert m1.third == pytest.approx(1.1e-4 / 2.2e-4)
    assert m2.estimate_seconds == pytest.approx(5e-6) and m2.third == pytest.approx(0.5)
    assert m3.estimate_seconds is None and m3.missing == ["c" * 40] and m3.third is None
    assert all(e is None for *_, e in m3.timeline)


def test_weights_argument_replaces_the_records_and_counts_untuned_tasks():
    weights = {"a" * 40: {"net": 3}, "d" * 40: {"net": 1}}   # task d was never tuned
    summary = report.summarize(crafted_log(), weights, ghz=2.0)
    (net,) = summary.models
    assert net.name == "net" and net.missing == ["d" * 40] and net.estimate_seconds is None
    assert summary.tasks[0].weights == {"net": 3} and summary.tasks[1].weights == {}
    del weights["d" * 40]
    (net,) = report.summarize(crafted_log(), weights, ghz=2.0).models
    assert net.estimate_seconds == pytest.approx(3e-4) and net.speedup == pytest.approx(4.5)


def test_records_of_two_targets_are_reported_apart():
    other = dict(TARGET, cpu="sapphirerapids", features="+avx2,+avx512f,+fma")
    records = crafted_log()[:2] + [rec("a" * 40, [5e-5], target=other, flops=2e6,
                                       weights={"m1": 1}, n=3)]
    summary = report.summarize(records, ghz=2.0)
    assert [(t.key[0], t.trials) for t in summary.tasks] == [("a", 1), ("b", 1), ("a", 1)]
    assert "sapphirerapids" in summary.tasks[2].target
    assert summary.tasks[2].peak_gflops == pytest.approx(2 * 2 * 2 * 16 * 2.0)
    assert [m.name.split(" [")[0] for m in summary.models] == ["m1", "m1", "m2", "m3"]
    assert summary.models[0].estimate_seconds == pytest.approx(4.5e-4 + 2e-5)


def test_peak_estimate_and_its_unknowns(tmp_path, monkeypatch):
    avx2 = rec("a" * 40, [1e-4], flops=1e6, threads=4)
    assert report.record_peak(avx2, 3.0) == pytest.approx(4 * 2 * 2 * 8 * 3.0)
    one_fma = rec("a" * 40, [1e-4], flops=1e6, threads=4,
                  target=dict(TARGET, cpu="znver4", features="+avx512f,+avx2,+fma"))
    assert report.record_peak(one_fma, 3.0) == pytest.approx(4 * 1 * 2 * 16 * 3.0)
    gpu = rec("a" * 40, [1e-4], flops=1e6, target=dict(TARGET, kind="cuda", cpu="sm_90",
                                                          features=""))
    assert report.record_peak(gpu, 3.0) is None and report.record_peak(avx2, None) is None
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\ncpu MHz\t\t: 2445.426\nprocessor\t: 1\n"
                       "cpu MHz\t\t: 3100.000\n")
    assert report.host_ghz(str(cpuinfo)) == pytest.approx(3.1)
    assert report.host_ghz(str(tmp_path / "absent")) is None
    monkeypatch.setattr(report, "host_ghz", lambda: None)    # a machine without the clock
    text = report.format_table(report.summarize(crafted_log()))
    row_a = next(line for line in text.splitlines() if line.startswith("dense("))
    assert re.split(r"\s{2,}", row_a)[6:8] == ["20.0", "-"]
    assert "% peak: of" not in text
    every_core = [rec("a" * 40, [1e-4], flops=1e6, threads=None)]   # ran on all cores
    assert report.summarize(every_core, ghz=2.0).tasks[0].peak_gflops == pytest.approx(
        os.cpu_count() * 2 * 2 * 8 * 2.0)
    text = report.format_table(report.summarize(every_core, ghz=2.0))
    assert text.startswith("1 record, 1 task, ")


# -- reading logs --------------------------------------------------------------------------
def test_torn_and_odd_lines_are_skipped_with_a_reason(tmp_path):
    path = write_log(tmp_path / "t.jsonl", crafted_log()[:3],
                     extra='\n[1, 2]\n{"schema": 1, "task": "x"}\n{"schema": 2, "task": "a')
    records, skipped = report.read_records(path)
    assert len(records) == 3 and len(skipped) == 3
    assert all(path in line for line in skipped)
    assert report.summarize(records).tasks[0].trials == 2


def test_odd_records_are_reported_as_far_as_they_go():
    """Records missing optional parts, or with parts of the wrong type, still summarize."""
    records = [{"task": "t", "seconds": [2e-3, 1e-3, "x"], "error": None},
               {"task": "t", "seconds": [3e-3], "error": "timeout", "time": "yesterday",
                "weights": {"m": "two", "n": 1}, "flops": "many"},
               {"task": "t", "seconds": [4e-3], "error": None, "workload": {"outputs": [7]}}]
    summary = report.summarize(records, ghz=2.0)
    (t,) = summary.tasks
    assert (t.trials, t.errors, t.best_seconds) == (3, {"timeout": 1}, 4e-3)
    assert t.name == "task()" and t.weights == {"n": 1} and t.gflops is None
    assert summary.first_time is None and summary.models[0].timeline[0][1] is None
    assert "3 records, 1 task\n" in report.format_table(summary)
    assert "<svg" in report.render_html(summary)
    records[0]["time"], records[2]["time"] = "2026-11-23T10:00:00", "2026-11-23T10:00:30Z"
    summary = report.summarize(records, ghz=2.0)     # a naive time is UTC
    assert (summary.last_time - summary.first_time).total_seconds() == 30
    assert [e for _, e, _ in summary.models[0].timeline] == [0, None, 30]


# -- the command line ----------------------------------------------------------------------
def test_cli_report_prints_the_table(tmp_path):
    path = write_log(tmp_path / "tune.jsonl", crafted_log())
    code, out, err = run_cli("report", path)
    assert code == 0, err
    assert out.startswith(f"{path}: 14 records, 3 tasks")
    assert re.search(r"^dense\(64x256, 256x128\) -> 64x128\s+aaaaaaaa\s+1\s+9\s", out, re.M)
    assert "model m1: estimated latency 110.0 us" in out and err == ""


def test_cli_report_warns_about_a_torn_line_and_goes_on(tmp_path):
    path = write_log(tmp_path / "tune.jsonl", crafted_log(), extra='{"schema": 2, "ta')
    code, out, err = run_cli("report", path)
    assert code == 0 and "14 records" in out
    assert len(err.strip().splitlines()) == 1 and "skipped" in err and "tune.jsonl" in err


@pytest.mark.parametrize("content, fragment", [
    (None, "no such file"),
    ("", "holds no tuning records"),
    ("not json\n\x00\n", "bad.jsonl:1: not a JSON object"),
    ('{"schema": 3, "task": "t"}\n', "bad.jsonl:1: "),
    (b"\xff\xfe garbage", "not UTF-8"),
])
def test_cli_report_bad_logs_fail_in_one_line(tmp_path, content, fragment):
    path = tmp_path / "bad.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    code, out, err = run_cli("report", path)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("dlc report: error:") and fragment in err


def test_cli_report_help_and_directory(tmp_path):
    code, out, _ = run_cli("--help")
    assert code == 0 and "report" in out
    code, out, _ = run_cli("report", "--help")
    assert code == 0 and all(o in out for o in ("--model", "--html"))
    code, _, err = run_cli("report", tmp_path)
    assert code == 2 and "is a directory" in err


def test_cli_report_model_weights_come_from_extract_tasks(tmp_path, monkeypatch):
    """--model weighs tasks by extract_tasks(model); a stub stands in for dlc.autotune.task
    here (tasks A and B weigh 2 and 4, so the estimate differs from the log's m1 = A + 2 B)."""
    path = write_log(tmp_path / "tune.jsonl", crafted_log())
    model = tmp_path / "resnet.onnx"
    model.write_bytes(b"stub")
    calls = []

    def extract_tasks(model_path):
        calls.append(model_path)
        return [types.SimpleNamespace(key="a" * 40, weight=2),
                types.SimpleNamespace(key="b" * 40, weight=4)]

    monkeypatch.setitem(sys.modules, "dlc.autotune.task",
                        types.SimpleNamespace(extract_tasks=extract_tasks))
    code, out, err = run_cli("report", path, "--model", model)
    assert code == 0, err
    assert calls == [str(model)]
    assert "model resnet: estimated latency 220.0 us (default schedules 940.0 us" in out
    assert "model m1" not in out
    code, _, err = run_cli("report", path, "--model", tmp_path / "absent.onnx")
    assert code == 2 and "absent.onnx: no such file" in err


# -- HTML ----------------------------------------------------------------------------------
def test_html_page_is_self_contained_and_complete():
    page = report.render_html(report.summarize(crafted_log(), ghz=2.0), "tune <report>")
    assert page.startswith("<!DOCTYPE html>") and "<title>tune &lt;report&gt;</title>" in page
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "<link" not in page and "<img" not in page
    assert page.count('<svg class="plot convergence"') == 2   # tasks A and B succeeded
    assert page.count('<svg class="plot model"') == 2         # m1, m2 (m3 has no estimate)
    assert page.count('<svg class="plot errors"') == 1
    assert page.count('<line class="failed"') == 5            # task A's failed trials
    assert page.count('<circle class="trial"') == 4 + 3       # valid trials of A and B
    assert "sch.split(sch.loop(&#x27;C&#x27;, &#x27;i&#x27;), factor=4)" in page
    assert "{&quot;mr&quot;: 9}" in page                     # task A's winning config
    assert "wrong_result at 10" in page                       # first message of the class


def test_html_without_errors_says_so():
    page = report.render_html(report.summarize(crafted_log()[:2], ghz=2.0))
    assert "No errors" in page and 'class="plot errors"' not in page


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists(
    "/usr/bin/chromium") else None)


@pytest.mark.skipif(CHROMIUM is None, reason="needs headless Chromium (Debian: chromium)")
def test_cli_html_renders_its_plots_in_headless_chromium(tmp_path):
    path = write_log(tmp_path / "tune.jsonl", crafted_log())
    page = tmp_path / "report.html"
    code, out, err = run_cli("report", path, "--html", page)
    assert code == 0, err
    assert out.rstrip().endswith(f"wrote {page}")
    shot = tmp_path / "shot.png"
    command = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,3000"]
    dom = subprocess.run(command + ["--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=120).stdout
    # the DOM after parsing: the plots are SVG elements with their marks
    assert len(re.findall(r'<svg class="plot convergence"', dom)) == 2
    assert len(re.findall(r'<svg class="plot model"', dom)) == 2
    assert len(re.findall(r'<path class="step"', dom)) == 4
    subprocess.run(command + [f"--screenshot={shot}", page.as_uri()], capture_output=True,
                   timeout=120)
    from PIL import Image

    colours = {c for _, c in Image.open(shot).convert("RGB").getcolors(1 << 24)}
    assert (0x1F, 0x77, 0xB4) in colours    # best-so-far lines drawn
    assert (0xD6, 0x27, 0x28) in colours    # failed trials and error bars drawn


# -- schedules as code ---------------------------------------------------------------------
def schedules():
    """Two schedules of fresh tensors using every CPU primitive, built by ``apply``."""
    def gemm():
        A, B, C, _, _ = matmul(16, 16, 8)
        D = te.compute((16, 16), lambda i, j: te.max(C[i, j], 0.0), name="D")
        return [A, B, D]

    def gemm_schedule(sch, A, B, D):
        AA = sch.cache_read(A, "local", ["C"])
        i, j, k = sch.get_loops("C")
        io, jo, ii, ji = sch.tile(i, j, 4, 8)
        ko, ki = sch.split(k, nparts=2)
        sch.reorder(io, jo, ko, ii, ki, ji)
        sch.compute_at(AA, ko)
        sch.unroll(ki)
        fused = sch.fuse(*sch.get_loops(D))
        fo, fi = sch.split(fused, factor=8)
        sch.parallel(fo)
        sch.vectorize(fi)

    def reduction():
        A = te.placeholder((7, 5), name="A")
        X = te.compute((7, 5), lambda i, j: A[i, j] + 1.0, name="X")
        k = te.reduce_axis(5, "k")
        S = te.compute((7,), lambda i: te.sum(X[i, k], axis=k), name="S")
        return [A, S]

    def reduction_schedule(sch, A, S):
        sch.compute_inline("X")
        _, r = sch.get_loops(S)
        _, ri = sch.split(r, factor=2)
        sch.rfactor(S, ri, factor_axis=0)
        sch.compute_root("S.rf")

    def cached():
        A = te.placeholder((8, 8), name="A")
        return [A, te.compute((8, 8), lambda i, j: A[i, j] * 2.0, name="B")]

    def cached_schedule(sch, A, B):
        BL = sch.cache_write(B, "local")
        sch.compute_at(BL, sch.get_loops(B)[0])
        sch.vectorize(sch.get_loops(B)[1])

    return [(gemm, gemm_schedule), (reduction, reduction_schedule), (cached, cached_schedule)]


@pytest.mark.parametrize("make, apply", schedules())
def test_trace_to_python_replays_the_schedule(make, apply):
    tensors = make()
    sch = dlc.Schedule(tensors)
    apply(sch, *tensors)
    code = report.trace_to_python(json.loads(sch.trace.to_json()))
    assert len(code.splitlines()) == len(sch.trace)
    again = dlc.Schedule(make())
    exec(code, {"sch": again})  # noqa: S102 - the printed code is what a user pastes
    assert again.trace == sch.trace
    assert str(dlc.lower(again)) == str(dlc.lower(sch))


def test_trace_to_python_refuses_what_it_cannot_print():
    assert report.trace_to_python({"version": 1, "primitives": []}) == ""
    with pytest.raises(ScheduleError, match="unknown primitive 'warp'"):
        report.trace_to_python({"version": 1, "primitives": [{"primitive": "warp",
                                                              "stage": "C"}]})
    with pytest.raises(ScheduleError, match="primitive 0 \\(split\\): no field 'loop'"):
        report.trace_to_python({"version": 1, "primitives": [{"primitive": "split",
                                                              "stage": "C", "factor": 4}]})
    with pytest.raises(ScheduleError):
        report.trace_to_python(None)


def test_html_shows_a_trace_that_cannot_be_printed():
    records = crafted_log()[:1]
    records[0]["trace"] = {"version": 1, "primitives": [{"primitive": "warp", "stage": "C"}]}
    page = report.render_html(report.summarize(records, ghz=2.0))
    assert "# the trace cannot be printed: primitive 0 (warp): unknown primitive" in page


def test_model_weights_without_task_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlc.autotune.task", None)
    with pytest.raises(DlcError, match="extract_tasks"):
        report.model_weights("m.onnx")


def test_format_helpers():
    assert report.format_seconds(1.234e-5) == "12.3 us"
    assert report.format_seconds(0.0123) == "12.300 ms"
    assert report.format_seconds(2.5) == "2.500 s" and report.format_seconds(None) == "-"
    assert report.format_duration(59) == "59s" and report.format_duration(61) == "1m01s"
    assert report.format_duration(3 * 3600 + 120) == "3h02m"
    assert math.isclose(report.median_seconds({"seconds": [3, 1, 2], "error": None}), 2)
    assert report.median_seconds({"seconds": [1.0], "error": {"class": "timeout"}}) is None
    assert report.median_seconds({"seconds": [], "error": None}) is None


def test_a_confirmed_task_reports_its_confirmation_and_counts_the_search_only():
    """The search's minimum (a lucky 1e-5 s) gives way to the confirmation's medians, for
    the best time and the speed-up; the confirmation records are not trials."""
    search = [rec("a" * 40, [4e-4], default=True, flops=2e6, n=0),
              rec("a" * 40, [1e-5], flops=2e6, n=1, config={"mr": 4}),
              rec("a" * 40, [2e-4], flops=2e6, n=2, config={"mr": 2})]
    confirm = [dict(rec("a" * 40, [5e-4, 4e-4, 4.2e-4], default=True, flops=2e6, n=3),
                    confirmation=True),
               dict(rec("a" * 40, [3e-4, 3.1e-4, 2.9e-4], flops=2e6, n=3,
                        config={"mr": 4}), confirmation=True),
               dict(rec("a" * 40, [2e-4, 2.1e-4, 2.2e-4], flops=2e6, n=3,
                        config={"mr": 2}), confirmation=True)]
    (task,) = report.summarize(search + confirm, ghz=2.0).tasks
    assert task.trials == 3
    assert task.best_seconds == pytest.approx(2.1e-4)
    assert task.best_record["config"] == {"mr": 2}
    assert task.default_seconds == pytest.approx(4.2e-4)
    assert task.speedup == pytest.approx(2.0)
    (alone,) = report.summarize(search, ghz=2.0).tasks
    assert alone.best_seconds == pytest.approx(1e-5)
