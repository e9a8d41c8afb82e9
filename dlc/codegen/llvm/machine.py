"""LLVM target machines, the optimization pipeline, object emission and linking.

Thread safety: every function here that calls into LLVM holds ``_LLVM_LOCK`` while it
does, so dlc.build and dlc.compile may run in several threads at once. llvmlite already
lets one thread at a time into LLVM, call by call (a lock in llvmlite.binding.ffi); this
lock makes dlc's multi-call sections atomic without relying on that internal, and it
guards file descriptor 2, which is process-wide and which target_machine redirects to read
LLVM's warnings. Generating LLVM IR in Python (codegen.py), linking (``ld``, in a private
temporary directory) and loading run outside it, in parallel.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import threading

from dlc.errors import CodegenError, TargetError

_LLVM_LOCK = threading.Lock()


@functools.cache
def _llvm():
    import llvmlite.binding as llvm

    with _LLVM_LOCK:
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
    return llvm


@functools.cache
def host_cpu_name() -> str:
    """LLVM's name of the CPU this process runs on (e.g. "znver4")."""
    llvm = _llvm()
    with _LLVM_LOCK:
        return llvm.get_host_cpu_name()


@functools.cache
def host_cpu_features() -> str:
    """LLVM feature string of the host CPU ("+avx2,+fma,...")."""
    llvm = _llvm()
    with _LLVM_LOCK:
        return llvm.get_host_cpu_features().flatten()


@functools.cache
def target_machine(cpu: str, features: str, opt_level: int = 3):
    """A position-independent x86-64 target machine for the given CPU and features."""
    llvm = _llvm()
    try:
        # the lock keeps another thread's LLVM warnings out of ``captured`` and this
        # thread's in it, and fd 2 pointing where it did before
        with _LLVM_LOCK, _stderr_captured() as captured:
            target = llvm.Target.from_triple(llvm.get_process_triple())
            tm = target.create_target_machine(cpu=cpu, features=features, opt=opt_level,
                                              reloc="pic", codemodel="default")
    except RuntimeError as err:  # pragma: no cover - llvm reports unknown CPUs this way
        raise CodegenError(f"LLVM cannot target cpu={cpu!r}: {err}") from err
    # LLVM only warns about an unknown CPU or feature, then aborts the process when it
    # emits code for the resulting subtarget (it lacks 64-bit mode): fail here instead.
    unknown = [line for line in captured if "is not a recognized" in line]
    for line in captured:
        if line not in unknown and sys.stderr is not None:
            sys.stderr.write(line + "\n")
    if unknown:
        raise TargetError(f"LLVM rejects -mcpu={cpu} -mattr={features}: {unknown[0]}. Use an "
                          "LLVM x86 CPU name (e.g. znver4, skylake-avx512, haswell, x86-64, "
                          "x86-64-v3) and features spelled like +avx2,-avx512f")
    return tm


@contextlib.contextmanager
def _stderr_captured():
    """Collect what native code writes to file descriptor 2 (LLVM's warnings), as lines."""
    lines: list[str] = []
    if sys.stderr is not None:
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2: nothing to capture
        yield lines
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines.extend(tmp.read().decode("utf-8", "replace").splitlines())


def optimize(llvm_ir: str, tm, opt_level: int = 3):
    """Parse LLVM IR text, verify it and run the standard -O<opt_level> pipeline."""
    llvm = _llvm()
    with _LLVM_LOCK:
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
    with _LLVM_LOCK:
        return tm.emit_object(mod)


def emit_assembly(mod, tm) -> str:
    with _LLVM_LOCK:
        return tm.emit_assembly(mod)


def module_text(mod) -> str:
    """LLVM IR text of a parsed module."""
    with _LLVM_LOCK:
        return str(mod)


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
def libgcc_path() -> str:
    """Path of GCC's static support library, libgcc.a. LLVM calls its helpers for conversions
    the CPU lacks (float64 -> float16 is __truncdfhf2 on every x86 without AVX512-FP16, and
    every float16 conversion on CPUs without F16C); linking it in keeps libraries
    self-contained."""
    import glob

    cc = shutil.which("gcc") or shutil.which("cc")
    if cc:
        try:
            out = subprocess.run([cc, "-print-libgcc-file-name"], capture_output=True,
                                 text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if os.path.isabs(out) and os.path.exists(out):
            return out
    found = sorted(glob.glob("/usr/lib/gcc/x86_64-linux-gnu/*/libgcc.a"))
    if found:
        return found[-1]
    raise CodegenError("libgcc.a (GCC's support library) was not found; dlc links it for "
                       "float16 conversions. Install gcc (Debian/Ubuntu: apt install gcc)")


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
