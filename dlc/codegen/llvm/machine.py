"""LLVM target machines, the optimization pipeline, object emission and linking."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile

from dlc.errors import CodegenError


@functools.cache
def _llvm():
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    return llvm


@functools.cache
def host_cpu_name() -> str:
    """LLVM's name of the CPU this process runs on (e.g. "znver4")."""
    return _llvm().get_host_cpu_name()


@functools.cache
def host_cpu_features() -> str:
    """LLVM feature string of the host CPU ("+avx2,+fma,...")."""
    return _llvm().get_host_cpu_features().flatten()


@functools.cache
def target_machine(cpu: str, features: str, opt_level: int = 3):
    """A position-independent x86-64 target machine for the given CPU and features."""
    llvm = _llvm()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    try:
        return target.create_target_machine(cpu=cpu, features=features, opt=opt_level,
                                            reloc="pic", codemodel="default")
    except RuntimeError as err:  # pragma: no cover - llvm reports unknown CPUs this way
        raise CodegenError(f"LLVM cannot target cpu={cpu!r}: {err}") from err


def optimize(llvm_ir: str, tm, opt_level: int = 3):
    """Parse LLVM IR text, verify it and run the standard -O<opt_level> pipeline."""
    llvm = _llvm()
    try:
        mod = llvm.parse_assembly(llvm_ir)
        mod.verify()
    except RuntimeError as err:
        raise CodegenError(f"dlc generated invalid LLVM IR (a dlc bug): {err}") from err
    mod.triple = tm.triple
    mod.data_layout = str(tm.target_data)
    if opt_level > 0:
        options = llvm.create_pipeline_tuning_options(speed_level=opt_level)
        options.loop_vectorization = True
        options.slp_vectorization = True
        builder = llvm.create_pass_builder(tm, options)
        builder.getModulePassManager().run(mod, builder)
    return mod


def emit_object(mod, tm) -> bytes:
    """Native object code of an optimized module."""
    return tm.emit_object(mod)


def emit_assembly(mod, tm) -> str:
    return tm.emit_assembly(mod)


@functools.cache
def _linker_command() -> tuple[str, ...]:
    from dlc import env

    chosen = env.linker()
    if chosen:
        return (chosen,)
    for name in ("ld", "ld.lld", "ld.gold"):
        path = shutil.which(name)
        if path:
            return (path,)
    raise CodegenError("no linker found: dlc needs 'ld' (GNU binutils) to build shared "
                       "libraries; install binutils or set DLC_LINKER to a linker")


@functools.cache
def libgomp_path() -> str:
    """Path of the GNU OpenMP runtime used by parallel loops."""
    import ctypes.util

    candidates = []
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc:
        try:
            out = subprocess.run([cc, "-print-file-name=libgomp.so.1"], capture_output=True,
                                 text=True, timeout=30).stdout.strip()
            candidates.append(out)
        except (OSError, subprocess.SubprocessError):
            pass
    found = ctypes.util.find_library("gomp")
    if found:
        candidates.append(found)
    for directory in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64"):
        candidates.append(os.path.join(directory, "libgomp.so.1"))
    for path in candidates:
        if path and os.path.isabs(path) and os.path.exists(path):
            return os.path.realpath(path)
    raise CodegenError("libgomp.so.1 (GNU OpenMP) was not found; parallel loops need it. "
                       "Install it (Debian/Ubuntu: apt install libgomp1)")


def link_shared(objects: list[bytes], libraries: list[str]) -> bytes:
    """Link object files into a shared library and return its bytes."""
    with tempfile.TemporaryDirectory(prefix="dlc-link-") as tmp:
        paths = []
        for n, obj in enumerate(objects):
            path = os.path.join(tmp, f"k{n}.o")
            with open(path, "wb") as f:
                f.write(obj)
            paths.append(path)
        out = os.path.join(tmp, "lib.so")
        cmd = [*_linker_command(), "-shared", "--as-needed", "-o", out, *paths, *libraries]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CodegenError(f"linking failed ({' '.join(cmd)}):\n{proc.stderr.strip()}")
        with open(out, "rb") as f:
            return f.read()


@functools.cache
def libm_path() -> str:
    """Path of the C math library (for scalar libm calls)."""
    import ctypes.util

    for directory in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64",
                      "/usr/lib64", "/lib", "/usr/lib"):
        path = os.path.join(directory, "libm.so.6")
        if os.path.exists(path):
            return path
    found = ctypes.util.find_library("m")
    if found and os.path.isabs(found):
        return found
    raise CodegenError("libm.so.6 (the C math library) was not found")
