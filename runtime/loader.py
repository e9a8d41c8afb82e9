"""``dlc.runtime.load(path)``: verify and load a .dlc artifact (NumPy + ctypes only)."""

from __future__ import annotations

import io
import os
import platform

import numpy as np

from dlc.errors import ArtifactError
from dlc.runtime import cpu_features
from dlc.runtime.artifact import read_artifact
from dlc.runtime.executor import Executor
from dlc.runtime.module import Module, _numpy_dtype, check_elf

ARTIFACT_KIND = "dlc-compiled-model"


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

    def set_num_threads(self, count: int) -> None:
        """Threads used by the parallel loops of the model's kernels."""
        if self.executor.module is not None:
            self.executor.module.set_num_threads(count)

    def __repr__(self) -> str:
        ins = ", ".join(f"{i['name']}: {i['dtype']}{i['shape']}" for i in self.manifest["inputs"])
        return f"LoadedModel({ins})"


def load(path) -> LoadedModel:
    """Load a .dlc artifact. Checksums, format version, artifact kind and CPU features are
    verified before any native code is loaded; every failure is an ArtifactError."""
    path = os.fspath(path)
    manifest, sections = read_artifact(path)
    check_manifest(path, manifest, sections)
    check_cpu(path, manifest["target"])
    module = None
    if "library" in sections:
        check_elf(sections["library"], f"{path} (section library)")
        module = Module(sections["library"], manifest.get("library_metadata"))
    weights = np.frombuffer(sections["weights"], dtype=np.uint8).copy()
    constants = {}
    if "constants" in sections:
        try:
            with np.load(io.BytesIO(sections["constants"]), allow_pickle=False) as npz:
                constants = {k: npz[k] for k in npz.files}
        except (OSError, ValueError) as err:
            raise ArtifactError(f"{path}: section constants is not a readable .npz: "
                                f"{err}") from None
    return LoadedModel(manifest, Executor(module, manifest["plan"], weights, constants))


def check_manifest(path: str, manifest: dict, sections: dict) -> None:
    """The manifest describes a compiled model this runtime can execute."""
    kind = manifest.get("kind")
    if kind != ARTIFACT_KIND:
        raise ArtifactError(f"{path} is a {kind!r} artifact, not a compiled dlc model "
                            f"({ARTIFACT_KIND!r})")
    for key, typ in (("target", dict), ("inputs", list), ("outputs", list), ("plan", dict)):
        if not isinstance(manifest.get(key), typ):
            raise ArtifactError(f"{path} has an invalid manifest (missing or malformed "
                                f"{key!r})")
    plan = manifest["plan"]
    for key in ("inputs", "outputs"):
        specs = plan.get(key)
        if not isinstance(specs, list) or not all(_valid_spec(s) for s in specs):
            raise ArtifactError(f"{path} has an invalid execution plan (malformed {key!r})")
    if not isinstance(plan.get("arena_bytes"), int) or plan["arena_bytes"] < 0:
        raise ArtifactError(f"{path} has an invalid execution plan (arena_bytes)")
    if "weights" not in sections:
        raise ArtifactError(f"{path} has no weights section")
    if plan.get("entry") and "library" not in sections:
        raise ArtifactError(f"{path} has an execution plan but no library section")
    target = manifest["target"]
    if str(target.get("string", "llvm")).split()[:1] != ["llvm"]:
        raise ArtifactError(f"{path} was compiled for target {target.get('string')!r}; this "
                            "runtime runs CPU ('llvm') artifacts")


def _valid_spec(spec) -> bool:
    if not (isinstance(spec, dict) and isinstance(spec.get("name"), str)
            and isinstance(spec.get("shape"), list)
            and all(isinstance(d, int) and d >= 0 for d in spec["shape"])
            and isinstance(spec.get("dtype"), str)):
        return False
    _numpy_dtype(spec["dtype"])  # a DlcError naming the dtype (or ml_dtypes) if unknown
    return True


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
