"""README.md's quick start runs as written: every fenced block of the section, in order, in
an empty directory (shell commands one by one, Python blocks as scripts), so the README
never rots."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _section(title: str) -> str:
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no '## {title}' section"
    return match.group(1)


def _blocks(section: str) -> list[tuple[str, str]]:
    return re.findall(r"^```(\w+)\n(.*?)^```", section, re.M | re.S)


def _argv(line: str) -> list[str]:
    words = shlex.split(line)
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    if words[0] == "dlc":
        script = shutil.which("dlc")
        return [script, *words[1:]] if script else [sys.executable, "-m", "dlc", *words[1:]]
    raise AssertionError(f"the quick start runs {words[0]!r}; this test knows python and dlc")


def test_set_up_has_the_two_commands():
    blocks = _blocks(_section("Set up"))
    assert blocks == [("bash", 'pip install -e ".[dev]"\npython -m pytest -q -n 2\n')]


def test_quick_start_runs(tmp_path):
    blocks = _blocks(_section("Quick start"))
    kinds = [kind for kind, _ in blocks]
    assert kinds.count("bash") >= 1 and kinds.count("python") >= 1
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLC_")}
    ran = []
    for kind, body in blocks:
        if kind == "bash":
            for line in body.splitlines():
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                proc = subprocess.run(_argv(line), cwd=tmp_path, capture_output=True,
                                      text=True, timeout=300, env=env)
                assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"
                ran.append((line, proc.stdout))
        elif kind == "python":
            proc = subprocess.run([sys.executable, "-c", body], cwd=tmp_path,
                                  capture_output=True, text=True, timeout=300, env=env)
            assert proc.returncode == 0, f"{body}\n{proc.stdout}\n{proc.stderr}"
            ran.append(("python", proc.stdout))
        else:
            pytest.fail(f"unexpected {kind!r} block in the quick start")
    outputs = dict(ran)
    assert "fused kernels:" in outputs["dlc compile mlp.onnx -o mlp.dlc"]
    assert "y: float32[1, 10]" in outputs["dlc run mlp.dlc"]
    assert "dlc / onnxruntime latency:" in outputs[
        "dlc bench mlp.dlc --compare-onnxruntime mlp.onnx"]
    assert (tmp_path / "mlp.dlc").exists() and (tmp_path / "mlp_api.dlc").exists()
    assert "estimated latency" in outputs["dlc tune mlp.onnx --log mlp.jsonl --trials 30"]
    assert "tuned kernels:" in outputs[
        "dlc compile mlp.onnx -o mlp_tuned.dlc --tuning-log mlp.jsonl"]
    assert (tmp_path / "report.html").exists()
