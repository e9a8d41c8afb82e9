"""Fixtures for runtime tests: a small model compiled once per test module, its saved
artifact's bytes, and a guard that fails a test if the loader gets as far as native code."""

from __future__ import annotations

import pytest
from tiny_models import small_model

import dlc
from dlc.runtime import loader


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    directory = tmp_path_factory.mktemp("artifact")
    return dlc.compile(small_model(directory / "small.onnx"))


@pytest.fixture(scope="module")
def saved(compiled, tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("saved") / "small.dlc"
    compiled.save(path)
    return path.read_bytes()


@pytest.fixture
def no_native_code(monkeypatch):
    """Fail the test if the loader gets as far as loading native code."""
    def refuse(*args, **kwargs):
        raise AssertionError("native code was loaded from a bad artifact")

    monkeypatch.setattr(loader, "Module", refuse)
