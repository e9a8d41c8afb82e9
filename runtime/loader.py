"""``dlc.runtime.load(path)``: verify and load a .dlc artifact (NumPy + ctypes only)."""

from __future__ import annotations

import io
import json

import numpy as np

from dlc.errors import ArtifactError
from dlc.runtime.artifact import read_artifact
from dlc.runtime.cpu_features import missing_features
from dlc.runtime.executor import Executor
from dlc.runtime.module import Module

ARTIFACT_KIND = "dlc-compiled-model"


class LoadedModel:
    """A model loaded from an artifact; ``run`` works like ``CompiledModel.run``."""

    def __init__(self, manifest: dict, executor: Executor):
        self.manifest = manifest
        self.executor = executor
        self.input_names = executor.input_names
        self.output_names = executor.output_names

    def run(self, *args, **kwargs) -> list:
        return self.executor.run(*args, **kwargs)

    __call__ = run

    def set_num_threads(self, count: int) -> None:
        if self.executor.module is not None:
            self.executor.module.set_num_threads(count)

    def __repr__(self) -> str:
        ins = ", ".join(f"{i['name']}: {i['dtype']}{i['shape']}" for i in self.manifest["inputs"])
        return f"LoadedModel({ins})"


def load(path) -> LoadedModel:
    """Load a .dlc artifact. Checksums, format version and CPU features are verified
    before any native code is loaded."""
    manifest, sections = read_artifact(path)
    if manifest.get("kind") != ARTIFACT_KIND:
        raise ArtifactError(f"{path} is not a compiled dlc model")
    target = manifest.get("target", {})
    missing = missing_features(target.get("required_features", []))
    if missing:
        raise ArtifactError(
            f"{path} was compiled for CPU '{target.get('cpu')}' and needs instruction set "
            f"extensions this CPU lacks: {', '.join(missing)}; recompile it for this machine "
            "(dlc compile --target llvm) or for an older CPU (e.g. --target 'llvm "
            "-mcpu=x86-64-v2')")
    module = None
    if "library" in sections:
        module = Module(sections["library"], manifest.get("library_metadata"))
    weights = np.frombuffer(sections.get("weights", b"\0" * 64), dtype=np.uint8).copy()
    constants = {}
    if "constants" in sections:
        with np.load(io.BytesIO(sections["constants"]), allow_pickle=False) as npz:
            constants = {k: npz[k] for k in npz.files}
    return LoadedModel(manifest, Executor(module, manifest["plan"], weights, constants))


def describe(manifest: dict) -> str:
    """A short human-readable summary of a manifest."""
    return json.dumps({k: manifest[k] for k in ("inputs", "outputs", "target")
                       if k in manifest}, indent=1)
