"""dlc.runtime needs NumPy and the standard library only: a .dlc artifact loads and runs in
a process where importing llvmlite, onnx or onnxruntime fails (a meta-path finder refuses
them), and neither ``dlc.runtime.load`` nor ``dlc run``/``dlc inspect`` of an artifact
imports the compiler's layers (graph, ops, loop IR, code generation, frontends)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from tiny_models import small_model, small_reference

import dlc

BLOCKER = textwrap.dedent("""
    import sys

    BLOCKED = ("llvmlite", "onnx", "onnxruntime")
    # the compiler's layers: a deployed model needs none of them
    COMPILER = ("dlc.codegen", "dlc.graph", "dlc.frontends", "dlc.ops", "dlc.compiler",
                "dlc.tir", "dlc.te", "dlc.expr", "dlc.schedules", "dlc.autotune")

    class Refuse:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is not installed (blocked by the test)")
            return None

    sys.meta_path.insert(0, Refuse())
    for blocked in BLOCKED:
        try:
            __import__(blocked)
        except ImportError:
            pass
        else:
            raise SystemExit(f"the blocker let {blocked} through")
""")

RUN = BLOCKER + textwrap.dedent("""
    import json
    import numpy as np
    import dlc.runtime

    model = dlc.runtime.load(sys.argv[1])
    x = np.load(sys.argv[2])
    outputs = model.run({"x": x})
    np.savez(sys.argv[3], *outputs)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED
                    or m.startswith(COMPILER))
    print(json.dumps({"loaded": loaded, "names": model.output_names}))
""")

CLI = BLOCKER + textwrap.dedent("""
    from dlc.cli import main

    code = main(sys.argv[1:])
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED
                   or m.startswith(COMPILER))
    print("HEAVY", heavy)
    sys.exit(code)
""")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    directory = tmp_path_factory.mktemp("isolated")
    dlc.compile(small_model(directory / "small.onnx")).save(directory / "small.dlc")
    return directory / "small.dlc"


def _python(script: str, *args, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLC_")}
    return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


def test_load_and_run_without_llvmlite_or_onnx(artifact, tmp_path):
    x = np.random.default_rng(1).standard_normal((2, 12)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    proc = _python(RUN, artifact, tmp_path / "x.npy", tmp_path / "out.npz")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["loaded"] == [], f"the runtime imported {report['loaded']}"
    assert report["names"] == ["y", "x_copy", "k"]
    with np.load(tmp_path / "out.npz") as out:
        got = [out[f"arr_{k}"] for k in range(3)]
    for a, want in zip(got, small_reference(x)):
        np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-6)


def test_dlc_run_without_llvmlite_or_onnx(artifact, tmp_path):
    """The command line runs (and inspects) artifacts on a machine with the runtime's
    dependencies only."""
    proc = _python(CLI, "run", artifact, "--output", tmp_path / "out.npz")
    assert proc.returncode == 0, proc.stderr
    assert "y: float32[2, 8]" in proc.stdout
    assert "HEAVY []" in proc.stdout
    assert (tmp_path / "out.npz").exists()
    proc = _python(CLI, "inspect", artifact)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout and "input: x: float32[2, 12]" in proc.stdout


def test_compiling_without_llvmlite_is_a_clear_error(tmp_path):
    """The other way round: compiling does need the compiler's dependencies."""
    proc = _python(CLI, "compile", small_model(tmp_path / "s.onnx"), "-o", tmp_path / "s.dlc")
    assert proc.returncode != 0
    assert not (tmp_path / "s.dlc").exists()
