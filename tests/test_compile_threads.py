"""dlc.compile and dlc.build called from 4 threads at once: every compiled model and kernel
matches its NumPy reference, including the very first compiles of a fresh process (which
load the ONNX converters and the op library while other threads are compiling)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from helpers import matmul
from tiny_models import chain_model, chain_reference, small_model, small_reference

import dlc

THREADS = 4


def model_specs(directory) -> list:
    """(ONNX path, opt_level, input, reference outputs) of 4 jobs: three different models
    and the first one again."""
    directory = str(directory)
    x_small = np.random.default_rng(1).standard_normal((2, 12)).astype(np.float32)
    x_chain = np.random.default_rng(2).standard_normal(16).astype(np.float32)
    x_long = np.random.default_rng(3).standard_normal(40).astype(np.float32)
    small = small_model(os.path.join(directory, "small.onnx"))
    return [
        (small, 3, x_small, small_reference(x_small)),
        (chain_model(os.path.join(directory, "chain.onnx"), n=6), 0, x_chain,
         [chain_reference(x_chain, 6)]),
        (chain_model(os.path.join(directory, "long.onnx"), n=3, size=40), 3, x_long,
         [chain_reference(x_long, 3)]),
        (small, 3, x_small, small_reference(x_small)),
    ]


def compile_in_threads(specs) -> list[str]:
    """Compile and run every spec in its own thread, all starting together; returns the
    failures as text (empty when every output matches its reference)."""
    start = threading.Barrier(len(specs))

    def job(spec):
        path, opt_level, x, reference = spec
        start.wait()
        outputs = dlc.compile(path, opt_level=opt_level).run(x)
        for got, want in zip(outputs, reference):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

    failures = []
    with ThreadPoolExecutor(len(specs)) as pool:
        for k, future in enumerate([pool.submit(job, spec) for spec in specs]):
            try:
                future.result()
            except Exception as err:  # noqa: BLE001 - reported with the thread's index
                failures.append(f"thread {k}: {type(err).__name__}: {err}")
    return failures


def test_compile_models_in_four_threads_at_once(tmp_path):
    specs = model_specs(tmp_path)
    for _ in range(3):
        assert compile_in_threads(specs) == []


FRESH = """
import json, sys
sys.path.insert(0, sys.argv[1])
from test_compile_threads import compile_in_threads, model_specs
print(json.dumps(compile_in_threads(model_specs(sys.argv[2]))))
"""


def test_first_compiles_of_a_fresh_process_in_four_threads(tmp_path):
    """The first compiles load the ONNX converters: a thread must not look one up while
    another thread's import has registered only some of them."""
    tests = os.path.dirname(__file__)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLC_")}
    proc = subprocess.run([sys.executable, "-c", FRESH, tests, str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def gemm_schedule(m, n, k, vector):
    A, B, C, inputs, ref = matmul(m, n, k)
    sch = dlc.Schedule([A, B, C])
    i, j, kk = sch.get_loops(C)
    jo, ji = sch.split(j, factor=vector)
    sch.reorder(i, jo, kk, ji)
    sch.vectorize(ji)
    return sch, inputs, ref


def test_build_schedules_in_four_threads_at_once():
    """Each thread builds a kernel, runs it and reads its assembly (emitted lazily)."""
    jobs = [gemm_schedule(13, 24, 7, 8), gemm_schedule(9, 40, 5, 16),
            gemm_schedule(13, 24, 7, 8), gemm_schedule(4, 64, 3, 32)]
    start = threading.Barrier(THREADS)

    def job(spec):
        sch, inputs, ref = spec
        start.wait()
        mod = dlc.build(sch)
        out = np.full(ref.shape, np.nan, np.float32)
        mod(*inputs, out)
        np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
        assert "ret" in mod.get_source("asm")
        return mod.get_source("ll")

    for _ in range(3):
        with ThreadPoolExecutor(THREADS) as pool:
            texts = list(pool.map(job, jobs))
        assert texts[0] == texts[2], "the same schedule gave different LLVM IR"


def test_dump_ir_of_threads_lowering_functions_of_one_name(tmp_path, monkeypatch):
    """With DLC_DUMP_IR, threads lowering different functions all named ``main`` write the
    same dump files: every read finds one lowering's whole text, never part of one or a
    mix of two."""
    from dlc.build import prepare

    monkeypatch.setenv("DLC_DUMP_IR", str(tmp_path))
    schedules = [gemm_schedule(13, 24, 7, 8)[0], gemm_schedule(9, 40, 5, 16)[0],
                 gemm_schedule(3, 64, 300, 32)[0], gemm_schedule(4, 4, 4, 4)[0]]
    whole: dict = {}
    for sch in schedules:
        prepare(dlc.lower(sch))
        for name in os.listdir(tmp_path):
            whole.setdefault(name, set()).add((tmp_path / name).read_text())
    start = threading.Barrier(THREADS)

    def job(sch) -> int:
        start.wait()
        torn = 0
        for _ in range(15):
            prepare(dlc.lower(sch))
            torn += sum((tmp_path / name).read_text() not in texts
                        for name, texts in whole.items())
        return torn

    with ThreadPoolExecutor(THREADS) as pool:
        assert list(pool.map(job, schedules)) == [0] * THREADS
    assert sorted(os.listdir(tmp_path)) == sorted(whole), "temporary files left behind"
