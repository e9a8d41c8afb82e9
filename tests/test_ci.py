""".ci/check-system names every missing system package on one line; .ci/run takes its two
commands from README's Set up block (tests/test_readme.py checks the block itself)."""

import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHECK = os.path.join(ROOT, ".ci", "check-system")


def _check(env_path: str, **extra) -> subprocess.CompletedProcess:
    env = {"PATH": env_path, "HOME": os.environ.get("HOME", "/"), **extra}
    return subprocess.run(["/bin/bash", CHECK], capture_output=True, text=True, env=env,
                          timeout=60)


def test_this_machine_has_what_dlc_needs():
    proc = _check(os.environ["PATH"], PYTHON=sys.executable)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_missing_linker_and_python_are_named_on_one_line(tmp_path):
    """A PATH with only the shell tools: no python3, no ld, no gcc."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("grep", "ldconfig"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, bin_dir / tool)
    proc = _check(str(bin_dir))
    assert proc.returncode == 1 and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dlc needs system packages that are missing:")
    assert "python3 (3.11 or newer)" in lines[0] and "a linker: ld (binutils)" in lines[0]
    assert "apt install" in lines[0]


def test_dlc_linker_that_does_not_exist_is_named(tmp_path):
    proc = _check(os.environ["PATH"], PYTHON=sys.executable, DLC_LINKER="no-such-linker")
    assert proc.returncode == 1
    assert "the linker DLC_LINKER=no-such-linker" in proc.stderr


def test_ci_runs_the_readme_commands_in_a_new_environment():
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        script = f.read()
    assert ".ci/check-system" in script
    assert "sed -n '/^## Set up$/,/^## /p' README.md" in script
    assert "-m venv" in script and "mktemp -d" in script
    assert 'eval "${commands[0]}"' in script and 'eval "${commands[1]}"' in script
