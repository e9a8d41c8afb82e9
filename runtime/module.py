"""A compiled kernel library loaded with ctypes: checked calls on NumPy arrays.

Needs only NumPy and the standard library, so exported libraries load on machines without
llvmlite or onnx (``dlc.runtime.load_module("k.so")``).
"""

from __future__ import annotations

import ctypes
import json
import os
import struct
import tempfile
import warnings
import weakref

import numpy as np

from dlc.errors import ArgumentError, ArtifactError, DlcError

METADATA_FORMAT = 1

# libgomp keeps its worker threads for the next parallel loop. A child forked after they
# started inherits that bookkeeping but not the threads, and its next parallel loop with more
# than one thread waits for them forever. So the child runs parallel loops on one thread.
_threads_started = False  # some module here ran a kernel with more than one thread
_forked_after_threads = False  # this process is such a child
_fork_warned = False
_live_modules: weakref.WeakSet = weakref.WeakSet()
_FORK_MESSAGE = ("this process was forked after dlc kernels ran on several threads; libgomp "
                 "cannot start threads again here, so parallel loops run on one thread. For "
                 "multi-threaded kernels in child processes, use multiprocessing's 'spawn' or "
                 "'forkserver' start method")


def before_call(module: Module) -> None:
    """Bookkeeping before any kernel of ``module`` runs (see _after_fork_in_child)."""
    global _threads_started, _fork_warned
    if _forked_after_threads:
        if not _fork_warned:
            _fork_warned = True
            warnings.warn(_FORK_MESSAGE, RuntimeWarning, stacklevel=3)
    elif module.num_threads > 1:
        _threads_started = True


def _after_fork_in_child() -> None:
    global _forked_after_threads
    if _threads_started:
        _forked_after_threads = True
        for module in list(_live_modules):
            module.set_num_threads(module.num_threads)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _numpy_dtype(name: str) -> np.dtype:
    try:
        return np.dtype(name)
    except TypeError:  # bfloat16, float8_*, int4, ...: ml_dtypes' NumPy types
        pass
    try:
        import ml_dtypes
    except ImportError:
        raise DlcError(f"dtype {name} needs the ml_dtypes package (pip install ml_dtypes)") \
            from None
    if not hasattr(ml_dtypes, name):
        raise DlcError(f"unknown dtype {name!r}")
    return np.dtype(getattr(ml_dtypes, name))


def default_num_threads() -> int:
    """Threads for parallel loops: DLC_NUM_THREADS, else the CPUs this process may use."""
    from dlc import env

    chosen = env.num_threads()
    if chosen:
        return chosen
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


class Kernel:
    """One function of a library; call it with NumPy arrays (outputs written in place)."""

    def __init__(self, lib, spec: dict, module: Module):
        self.module = module
        self.name = spec["name"]
        self.params = spec["params"]
        self._fn = native_function(lib, spec["symbol"])
        self._fn.restype = ctypes.c_int32
        self._fn.argtypes = [ctypes.c_void_p] * len(self.params)
        self._dtypes = [_numpy_dtype(p["dtype"]) for p in self.params]
        self._shapes = [tuple(p["shape"]) for p in self.params]
        self._outputs = [k for k, p in enumerate(self.params) if p.get("output")]

    def check(self, arrays) -> list[int]:
        """Validate arguments; return their data addresses."""
        if len(arrays) != len(self.params):
            names = ", ".join(p["name"] for p in self.params)
            raise ArgumentError(f"{self.name} takes {len(self.params)} arrays ({names}), got "
                                f"{len(arrays)}")
        addresses = []
        for k, (arr, p) in enumerate(zip(arrays, self.params)):
            name = p["name"]
            if not isinstance(arr, np.ndarray):
                raise ArgumentError(f"{self.name}: argument {name} must be a numpy.ndarray, got "
                                    f"{type(arr).__name__}")
            if arr.dtype != self._dtypes[k]:
                raise ArgumentError(f"{self.name}: argument {name} must have dtype "
                                    f"{p['dtype']}, got {arr.dtype}; convert it with "
                                    f".astype(numpy.{p['dtype']})")
            if arr.shape != self._shapes[k]:
                raise ArgumentError(f"{self.name}: argument {name} must have shape "
                                    f"{self._shapes[k]}, got {arr.shape}")
            if not arr.flags.c_contiguous:
                raise ArgumentError(f"{self.name}: argument {name} is not C-contiguous; pass "
                                    "numpy.ascontiguousarray(...)")
            if k in self._outputs and not arr.flags.writeable:
                raise ArgumentError(f"{self.name}: output {name} is read-only")
            addresses.append(arr.ctypes.data)
        for k in self._outputs:
            for j, other in enumerate(arrays):
                if j != k and np.may_share_memory(arrays[k], other):
                    raise ArgumentError(f"{self.name}: output {self.params[k]['name']} overlaps "
                                        f"argument {self.params[j]['name']} in memory; pass "
                                        "distinct arrays")
        return addresses

    def __call__(self, *arrays) -> None:
        addresses = self.check(arrays)
        before_call(self.module)
        status = self._fn(*addresses)
        if status != 0:
            raise DlcError(f"{self.name} failed: out of memory for its scratch buffers")

    def call_unchecked(self, *addresses: int) -> int:
        """Call with raw data addresses (no checks); returns the status code."""
        before_call(self.module)
        return self._fn(*addresses)


class Module:
    """A loaded library of kernels. ``mod(*arrays)`` calls its first function."""

    def __init__(self, library: bytes, metadata: dict | None = None, sources=None):
        self._bytes = library
        self._sources = sources or {}
        fd, path = tempfile.mkstemp(prefix="dlc-", suffix=".so")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(library)
            try:
                self._lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_LOCAL", 0))
            except OSError as err:
                raise ArtifactError(f"cannot load compiled code: {err}") from None
        finally:
            os.unlink(path)
        _keep_openmp_loaded()
        # unloaded once nothing refers to this module (its kernels refer to it too)
        weakref.finalize(self, _unload, self._lib).atexit = False
        if metadata is None:
            metadata = read_metadata(self._lib)
        self.metadata = metadata
        self.functions = {spec["name"]: Kernel(self._lib, spec, self)
                          for spec in metadata["functions"]}
        functions = metadata["functions"]
        self.entry_name = functions[0]["name"] if functions else None
        self._set_threads = native_function(self._lib, "dlc_set_num_threads")
        self._set_threads.argtypes = [ctypes.c_int32]
        self._set_threads.restype = None
        threads = metadata.get("num_threads") or default_num_threads()
        self.set_num_threads(threads)
        _live_modules.add(self)

    def set_num_threads(self, count: int) -> None:
        """Threads used by this module's parallel loops."""
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count < 2**31:
            raise DlcError(f"number of threads must be a positive integer, got {count!r}")
        if _forked_after_threads:
            count = 1  # see _FORK_MESSAGE
        self._set_threads(count)
        self.num_threads = count

    def __call__(self, *arrays) -> None:
        if self.entry_name is None:
            raise DlcError("this module has no kernel functions")
        self.functions[self.entry_name](*arrays)

    def native(self, symbol: str):
        """The library's exported function ``symbol`` as a ctypes function (no checks)."""
        return native_function(self._lib, symbol)

    def get_function(self, name: str) -> Kernel:
        if name not in self.functions:
            raise DlcError(f"no function {name!r}; functions: {', '.join(self.functions)}")
        return self.functions[name]

    def get_source(self, fmt: str = "ll") -> str:
        """Generated code as text: "ll" (optimized LLVM IR), "asm" or "tir" (loop IR)."""
        if fmt not in self._sources:
            available = ", ".join(self._sources) or "none (module loaded from a library)"
            raise DlcError(f"no {fmt!r} source; available: {available}")
        value = self._sources[fmt]
        return value() if callable(value) else value

    def export_library(self, path) -> None:
        """Write the shared library; load it later with ``dlc.runtime.load_module``."""
        path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise DlcError(f"cannot write {path}: directory {directory} does not exist")
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".dlc-export-")
        except OSError as err:
            raise DlcError(f"cannot write {path}: {err.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self._bytes)
            os.chmod(tmp, 0o644)  # mkstemp makes files only their owner can read
            os.replace(tmp, path)
        except OSError as err:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise DlcError(f"cannot write {path}: {err.strerror}") from None

    @property
    def library_bytes(self) -> bytes:
        return self._bytes


_openmp_pin = None  # libgomp, opened once more with RTLD_NODELETE (see _keep_openmp_loaded)


def _keep_openmp_loaded() -> None:
    """Once a library has brought in libgomp, keep libgomp mapped for good: its worker
    threads outlive the library that started them, so unloading that library must never
    unload libgomp under them."""
    global _openmp_pin
    if _openmp_pin is not None or not hasattr(os, "RTLD_NODELETE"):
        return
    try:  # RTLD_NOLOAD: only if already loaded; nothing is loaded here
        _openmp_pin = ctypes.CDLL("libgomp.so.1",
                                  mode=os.RTLD_NOLOAD | os.RTLD_NODELETE | os.RTLD_LOCAL)
    except OSError:
        pass  # not loaded yet (no library with parallel loops so far)


def _unload(lib) -> None:
    """dlclose a library that no module uses any more (its memory mapping goes away).
    libgomp, if it brought it in, was pinned when it was loaded."""
    dlclose = ctypes.CDLL(None).dlclose
    dlclose.argtypes = [ctypes.c_void_p]
    dlclose(lib._handle)


def native_function(lib, symbol: str):
    """The exported function ``symbol`` of ``lib`` (a ctypes.CDLL); an ArtifactError if the
    library has none."""
    try:
        return lib[symbol]
    except (AttributeError, TypeError, ValueError):
        raise ArtifactError(f"the library exports no function {symbol!r}") from None


def read_metadata(lib) -> dict:
    try:
        getter = lib.dlc_metadata
    except AttributeError:
        raise ArtifactError("this library was not built by dlc (no dlc_metadata)") from None
    getter.restype = ctypes.c_char_p
    getter.argtypes = []
    try:
        metadata = json.loads((getter() or b"").decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ArtifactError(f"library metadata is corrupted: {err}") from None
    if not isinstance(metadata, dict):
        raise ArtifactError("library metadata is corrupted: not a JSON object")
    if metadata.get("format") != METADATA_FORMAT:
        raise ArtifactError(f"library metadata format {metadata.get('format')} is not "
                            f"supported (expected {METADATA_FORMAT})")
    return metadata


def load_module(path) -> Module:
    """Load a library written by ``Module.export_library``."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such file") from None
    except OSError as err:
        raise ArtifactError(f"{path}: {err.strerror}") from None
    check_elf(data, path)
    return Module(data)


def check_elf(data: bytes, path: str) -> None:
    """Reject files that are not whole x86-64 shared libraries before the dynamic loader maps
    them: a truncated library maps pages past the end of the file, and touching those kills
    the process with SIGBUS instead of raising."""
    if not data.startswith(b"\x7fELF"):
        raise ArtifactError(f"{path} is not a shared library")
    if len(data) < 64 or data[4] != 2 or data[5] != 1:
        raise ArtifactError(f"{path} is not a 64-bit little-endian ELF file (truncated?)")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_type != 3 or e_machine != 62:
        raise ArtifactError(f"{path} is not an x86-64 shared library (ELF type {e_type}, "
                            f"machine {e_machine})")
    phoff, shoff = struct.unpack_from("<QQ", data, 32)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", data, 54)
    if phnum and phentsize < 56:  # the size of an Elf64_Phdr
        raise ArtifactError(f"{path} is not a valid ELF file (program headers of "
                            f"{phentsize} bytes)")
    ends = [phoff + phentsize * phnum, shoff + shentsize * shnum]
    if ends[0] <= len(data):
        for k in range(phnum):
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data,
                                                                     phoff + k * phentsize)
            if p_type == 1:  # PT_LOAD
                ends.append(p_offset + p_filesz)
    if max(ends) > len(data):
        raise ArtifactError(f"{path} is truncated: {len(data)} bytes, but its headers describe "
                            f"{max(ends)}; export it again")
