"""Packaging: every package directory is installed, and importing dlc stays light.

frontends/, schedules/ and runtime/ live at the top of the repository but install as
dlc.frontends, dlc.schedules and dlc.runtime (setuptools' package-dir mapping, see
pyproject.toml and docs/architecture.md)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAPPING = {"dlc": "dlc", "dlc.frontends": "frontends", "dlc.schedules": "schedules",
           "dlc.runtime": "runtime"}


def _pyproject() -> dict:
    import tomllib  # standard library (dlc needs Python 3.11+)

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def _package_directories() -> dict[str, str]:
    """Dotted package name -> directory, for every directory holding Python modules."""
    found = {}
    for package, top in MAPPING.items():
        base = os.path.join(ROOT, top)
        for directory, subdirs, files in os.walk(base):
            subdirs[:] = sorted(d for d in subdirs if not d.startswith((".", "__pycache__")))
            if not any(f.endswith(".py") for f in files):
                continue
            rel = os.path.relpath(directory, base)
            name = package if rel == "." else package + "." + rel.replace(os.sep, ".")
            assert name not in found, f"{name} is both {found[name]} and {directory}"
            found[name] = directory
    return found


def test_package_dir_mapping():
    setuptools = _pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"] == MAPPING


def test_every_package_directory_is_listed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    on_disk = set(_package_directories())
    missing = sorted(on_disk - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_every_listed_package_exists():
    listed = _pyproject()["tool"]["setuptools"]["packages"]
    on_disk = _package_directories()
    stale = sorted(set(listed) - set(on_disk))
    assert not stale, f"pyproject.toml lists packages with no __init__.py: {stale}"
    assert len(listed) == len(set(listed)), "a package is listed twice"


def test_every_package_directory_has_an_init():
    without = sorted(name for name, directory in _package_directories().items()
                     if not os.path.exists(os.path.join(directory, "__init__.py")))
    assert not without, f"directories of Python modules without __init__.py: {without}"


def test_no_top_level_shadows():
    """dlc/ must not hold its own frontends/, schedules/ or runtime/ packages: the
    mapped top-level directories would hide them (or they would hide those)."""
    for name in ("frontends", "schedules", "runtime"):
        assert not os.path.exists(os.path.join(ROOT, "dlc", name, "__init__.py")), name


_LIGHT_IMPORT = """
import json, sys
import {module}
heavy = sorted(m for m in sys.modules
               if m.split(".")[0] in ("llvmlite", "onnx", "onnxruntime", "ml_dtypes"))
print(json.dumps({{"heavy": heavy, "file": sys.modules["{module}"].__file__}}))
"""


@pytest.mark.parametrize("module", ["dlc.runtime", "dlc"])
def test_import_is_light(module):
    """A fresh ``import dlc`` / ``import dlc.runtime`` loads neither llvmlite nor onnx, so
    exported libraries load on machines without them."""
    proc = subprocess.run([sys.executable, "-c", _LIGHT_IMPORT.format(module=module)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [], f"import {module} loaded {report['heavy']}"
    expected = MAPPING.get(module, module.replace(".", os.sep))
    assert os.path.dirname(report["file"]) == os.path.join(ROOT, expected)


def test_runtime_imports_no_compiler_layers():
    """runtime/ loads artifacts with NumPy and ctypes only: no codegen, graph or frontends."""
    for fname in os.listdir(os.path.join(ROOT, "runtime")):
        if not fname.endswith(".py"):
            continue
        with open(os.path.join(ROOT, "runtime", fname)) as f:
            text = f.read()
        for layer in ("dlc.codegen", "dlc.graph", "dlc.frontends", "llvmlite", "onnx"):
            assert f"import {layer}" not in text and f"from {layer}" not in text, \
                f"runtime/{fname} imports {layer}"


_INSTALLED_IMPORTS = """
import json, sys
import dlc, dlc.runtime, dlc.frontends, dlc.schedules, dlc.tir.lower, dlc.te
import dlc.codegen.llvm.codegen
print(json.dumps({m: sys.modules[m].__file__ for m in
                  ("dlc", "dlc.runtime", "dlc.frontends", "dlc.schedules", "dlc.tir.lower",
                   "dlc.codegen.llvm.codegen")}))
"""


def test_installed_tree_imports(tmp_path):
    """What setuptools installs (build_py on a copy of the sources) is a complete dlc."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for top in MAPPING.values():
        shutil.copytree(os.path.join(ROOT, top), src / top, ignore=ignore)
    out = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                           "build_py", "-d", str(out)], cwd=src, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    env = {**os.environ, "PYTHONPATH": str(out)}
    proc = subprocess.run([sys.executable, "-c", _INSTALLED_IMPORTS], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for module, path in json.loads(proc.stdout.strip().splitlines()[-1]).items():
        assert path.startswith(str(out)), f"{module} came from {path}, not the installed tree"
