"""dlc/env.py is the one place that reads DLC_* variables, and
docs/reference/environment.md lists exactly those."""

import os
import re

from dlc import env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCES = ("dlc", "frontends", "schedules", "runtime", "benchmarks", "docs")


def _python_files():
    for top in SOURCES:
        for folder, _, names in os.walk(os.path.join(ROOT, top)):
            for name in names:
                if name.endswith(".py"):
                    yield os.path.join(folder, name)


def test_only_env_reads_dlc_variables():
    reader = os.path.join(ROOT, "dlc", "env.py")
    reads = re.compile(r"(environ(\.get)?[\[(]|getenv\()\s*['\"]DLC_")
    offenders = []
    for path in _python_files():
        if path == reader:
            continue
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if reads.search(line):
                    offenders.append(f"{os.path.relpath(path, ROOT)}:{number}")
    assert offenders == [], "read DLC_* through dlc.env instead"


def test_env_module_reads_exactly_its_listed_variables():
    with open(os.path.join(ROOT, "dlc", "env.py")) as f:
        read = set(re.findall(r"environ\.get\(\s*\"(DLC_\w+)\"", f.read()))
    assert read == set(env.VARIABLES)


def test_environment_doc_lists_every_variable_once():
    with open(os.path.join(ROOT, "docs", "reference", "environment.md")) as f:
        rows = re.findall(r"^\| `(DLC_\w+)` \|", f.read(), re.M)
    assert rows == list(env.VARIABLES)


def test_every_dlc_variable_named_anywhere_is_documented():
    named = set()
    for path in list(_python_files()) + [os.path.join(ROOT, "README.md")]:
        with open(path) as f:
            named |= set(re.findall(r"\bDLC_[A-Z_]+[A-Z]\b", f.read()))
    assert named <= set(env.VARIABLES), sorted(named - set(env.VARIABLES))


def test_conformance_traceback_flag(monkeypatch):
    for value, want in [("", False), ("0", False), ("1", True), ("yes", True)]:
        monkeypatch.setenv("DLC_CONFORMANCE_TRACEBACK", value)
        assert env.conformance_traceback() is want
    monkeypatch.delenv("DLC_CONFORMANCE_TRACEBACK")
    assert env.conformance_traceback() is False
