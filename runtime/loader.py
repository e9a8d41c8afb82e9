"""``dlc.runtime.load(path)``: verify and load a .dlc artifact (NumPy + ctypes only)."""

from __future__ import annotations

import os
import platform

import numpy as np

from dlc.errors import ArtifactError
from dlc.runtime import cpu_features
from dlc.runtime.artifact import read_artifact
from dlc.runtime.executor import Executor
from dlc.runtime.manifest import ARTIFACT_KIND, check_manifest, unpack_constants  # noqa: F401
from dlc.runtime.module import Module, check_elf, read_metadata


class LoadedModel:
    """A model loaded from an artifact; ``run`` works like ``CompiledModel.run``: arrays by
    position, a dict or keywords in, a list of fresh output arrays (graph order) out. One
    LoadedModel may be run from several threads at once."""

    def __init__(self, manifest: dict, executor: Executor):
        self.manifest = manifest
        self.executor = executor
        self.input_names = executor.input_names
        self.output_names = executor.output_names

    @property
    def inputs(self) -> list:
        """[{"name", "shape", "dtype"}] of every input, in order."""
        return [dict(spec) for spec in self.executor.inputs]

    @property
    def outputs(self) -> list:
        """[{"name", "shape", "dtype"}] of every output, in order."""
        return [dict(spec) for spec in self.executor.outputs]

    def run(self, *args, **kwargs) -> list:
        return self.executor.run(*args, **kwargs)

    __call__ = run

    def profile(self, inputs, repeat: int = 20, warmup: int = 3):
        """Each kernel's median time, share and GFLOP/s (a dlc.runtime.profile.Profile;
        print it for a table)."""
        return self.executor.profile(inputs, repeat, warmup)

    def set_num_threads(self, count: int) -> None:
        """Threads used by the parallel loops of the model's kernels."""
        if self.executor.module is not None:
            self.executor.module.set_num_threads(count)

    def __repr__(self) -> str:
        ins = ", ".join(f"{i['name']}: {i['dtype']}{i['shape']}" for i in self.manifest["inputs"])
        return f"LoadedModel({ins})"


def load(path) -> LoadedModel:
    """Load a .dlc artifact. Checksums, format version, artifact kind, every manifest field
    the runtime reads and CPU features are verified before any native code is loaded;
    every failure is an ArtifactError."""
    path = os.fspath(path)
    manifest, sections = read_artifact(path)
    check_manifest(path, manifest, sections)
    check_cpu(path, manifest["target"])
    constants = unpack_constants(manifest, sections.get("constants", b""))
    weights = np.frombuffer(sections["weights"], dtype=np.uint8).copy()
    module = None
    if "library" in sections:
        module = load_library(path, sections["library"], manifest["library_metadata"],
                              manifest["plan"]["entry"])
    return LoadedModel(manifest, Executor(module, manifest["plan"], weights, constants))


def load_library(path: str, library: bytes, metadata: dict, entry: str | None) -> Module:
    """Load the library section; it must export ``entry`` and every kernel, and embed the
    same metadata as the manifest (which check_manifest has checked against the plan)."""
    check_elf(library, f"{path} (section library)")
    try:
        module = Module(library, metadata)
        if entry is not None:
            module.native(entry)
        embedded = read_metadata(module._lib)
    except ArtifactError as err:
        raise ArtifactError(f"{path} (section library): {err}") from None
    if embedded != metadata:
        raise ArtifactError(f"{path} is inconsistent (library_metadata in the manifest "
                            "differs from the metadata the library embeds); recompile the "
                            "model ('dlc compile')")
    return module


def check_cpu(path: str, target: dict) -> None:
    """This machine can run the artifact's native code: x86-64 with every required
    instruction-set extension."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        raise ArtifactError(f"{path} holds x86-64 code; this machine is {machine}")
    missing = cpu_features.missing_features(target.get("required_features", []))
    if missing:
        raise ArtifactError(
            f"{path} was compiled for CPU '{target.get('cpu')}' and needs instruction set "
            f"extensions this CPU lacks: {', '.join(missing)}; recompile it for this machine "
            "(dlc compile --target llvm) or for an older CPU (e.g. --target 'llvm "
            "-mcpu=x86-64-v2')")
