"""dlc.runtime.Module: argument checks, export, and loading exported libraries (also with
ctypes alone, in a process where llvmlite cannot be imported)."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import dlc
from dlc import te
from dlc.runtime import Module, load_module

M, N = 4, 8


def _schedule(name="addmul"):
    """C[i, j] = A[i, j] * 2 + float(B[j]) with A float32[4, 8], B int32[8]."""
    A = te.placeholder((M, N), "float32", name="A")
    B = te.placeholder((N,), "int32", name="B")
    C = te.compute((M, N), lambda i, j: A[i, j] * 2.0 + te.cast(B[j], "float32"), name="C")
    return dlc.Schedule([A, B, C], name=name)


@pytest.fixture(scope="module")
def mod() -> Module:
    return dlc.build(_schedule())


@pytest.fixture(scope="module")
def unary() -> Module:
    """Y = X + 1 on float32[4, 8]: an output that can alias its input."""
    X = te.placeholder((M, N), "float32", name="X")
    Y = te.compute((M, N), lambda i, j: X[i, j] + 1.0, name="Y")
    return dlc.build(dlc.Schedule([X, Y]))


def _args():
    a = np.arange(M * N, dtype=np.float32).reshape(M, N)
    b = np.arange(N, dtype=np.int32) * 10
    return a, b, np.full((M, N), np.nan, np.float32)


def _expected(a, b):
    return a * 2 + b.astype(np.float32)


def test_call_writes_output_in_place(mod):
    a, b, c = _args()
    assert mod(a, b, c) is None
    np.testing.assert_array_equal(c, _expected(a, b))


def _readonly(x):
    x = x.copy()
    x.setflags(write=False)
    return x


BAD_CALLS = {
    "too few": (lambda a, b, c: (a, b), r"addmul takes 3 arrays \(A, B, C\), got 2"),
    "too many": (lambda a, b, c: (a, b, c, c), r"addmul takes 3 arrays \(A, B, C\), got 4"),
    "none": (lambda a, b, c: (), "takes 3 arrays"),
    "list": (lambda a, b, c: (a.tolist(), b, c), "argument A must be a numpy.ndarray, got list"),
    "None": (lambda a, b, c: (a, None, c), "argument B must be a numpy.ndarray, got NoneType"),
    "scalar": (lambda a, b, c: (a, b, np.float32(0)), "argument C must be a numpy.ndarray"),
    "float64": (lambda a, b, c: (a.astype(np.float64), b, c),
                "argument A must have dtype float32, got float64"),
    "int64 for int32": (lambda a, b, c: (a, b.astype(np.int64), c),
                        "argument B must have dtype int32, got int64"),
    "big-endian": (lambda a, b, c: (a.astype(">f4"), b, c), "argument A must have dtype"),
    "shape": (lambda a, b, c: (a.reshape(N, M), b, c),
              r"argument A must have shape \(4, 8\), got \(8, 4\)"),
    "flat": (lambda a, b, c: (a.ravel(), b, c), "must have shape"),
    "strided": (lambda a, b, c: (a, np.zeros(2 * N, np.int32)[::2], c),
                "argument B is not C-contiguous"),
    "fortran": (lambda a, b, c: (np.asfortranarray(a), b, c), "argument A is not C-contiguous"),
    "transposed": (lambda a, b, c: (a, b, np.zeros((N, M), np.float32).T),
                   "argument C is not C-contiguous"),
    "read-only output": (lambda a, b, c: (a, b, _readonly(c)), "output C is read-only"),
}


@pytest.mark.parametrize("case", BAD_CALLS)
def test_bad_arguments_raise(mod, case):
    make, message = BAD_CALLS[case]
    a, b, c = _args()
    with pytest.raises(dlc.ArgumentError, match=message):
        mod(*make(a, b, c))
    assert np.isnan(c).all(), "nothing ran"
    mod(a, b, c)  # and the module still works
    np.testing.assert_array_equal(c, _expected(a, b))


def test_argument_error_is_a_value_error(mod):
    with pytest.raises(ValueError):
        mod()


def test_read_only_inputs_are_fine(mod):
    a, b, c = _args()
    mod(_readonly(a), _readonly(b), c)
    np.testing.assert_array_equal(c, _expected(a, b))


@pytest.mark.parametrize("make", [
    lambda x: (x, x),                              # the same array
    lambda x: (x, x[:]),                           # a view of it
    lambda x: (x[::-1].copy(), x.reshape(N, M).reshape(M, N)),
], ids=["same", "view", "reshaped-view-vs-copy"])
def test_output_aliasing_input(unary, make):
    x = np.arange(M * N, dtype=np.float32).reshape(M, N)
    args = make(x)
    if np.may_share_memory(*args):
        with pytest.raises(dlc.ArgumentError, match="output Y overlaps argument X in memory"):
            unary(*args)
        np.testing.assert_array_equal(x, np.arange(M * N, dtype=np.float32).reshape(M, N))
    else:
        unary(*args)
        np.testing.assert_array_equal(args[1], args[0] + 1)


def test_partial_overlap_is_rejected(unary):
    buf = np.zeros(M * N + N, np.float32)
    x = buf[:M * N].reshape(M, N)
    y = buf[N:].reshape(M, N)
    with pytest.raises(dlc.ArgumentError, match="overlaps"):
        unary(x, y)


def test_inputs_may_alias_each_other():
    X = te.placeholder((M, N), "float32", name="X")
    Y = te.placeholder((M, N), "float32", name="Y")
    Z = te.compute((M, N), lambda i, j: X[i, j] * Y[i, j], name="Z")
    mod = dlc.build(dlc.Schedule([X, Y, Z]))
    x = np.arange(M * N, dtype=np.float32).reshape(M, N)
    z = np.zeros_like(x)
    mod(x, x, z)
    np.testing.assert_array_equal(z, x * x)


def test_several_functions_in_one_library(tmp_path):
    f = dlc.lower(_schedule("first"))
    g = dlc.lower(_schedule("second"))
    mod = dlc.build([f, g])
    assert list(mod.functions) == ["first", "second"]
    a, b, c = _args()
    mod.get_function("second")(a, b, c)
    np.testing.assert_array_equal(c, _expected(a, b))
    with pytest.raises(dlc.DlcError, match="no function 'third'; functions: first, second"):
        mod.get_function("third")
    with pytest.raises(dlc.DlcError, match="distinct names"):
        dlc.build([f, f])
    path = tmp_path / "two.so"
    mod.export_library(path)
    loaded = load_module(path)
    assert list(loaded.functions) == ["first", "second"]
    c2 = np.zeros_like(c)
    loaded.get_function("first")(a, b, c2)
    np.testing.assert_array_equal(c2, c)


def _huge_allocation_fails() -> bool:
    """Whether the kernel's 1 TiB malloc is sure to fail (Linux heuristic or strict
    overcommit, with less than 1 TiB of memory and swap)."""
    try:
        with open("/proc/sys/vm/overcommit_memory") as f:
            mode = int(f.read())
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    except (OSError, ValueError, IndexError):
        return False
    return mode in (0, 2) and info["MemTotal"] + info.get("SwapTotal", 0) < 2**40


def test_failed_scratch_allocation_raises():
    """A 1 TiB scratch buffer cannot be allocated: the kernel returns -1, the runtime raises."""
    if not _huge_allocation_fails():
        pytest.skip("this machine might grant a 1 TiB allocation (overcommit_memory=1)")
    A = te.placeholder((4,), "float32", name="A")
    T = te.compute((2**20, 2**18), lambda i, j: A[0] + te.cast(i + j, "float32"), name="T")
    C = te.compute((4,), lambda i: T[i, i], name="C")
    mod = dlc.build(dlc.Schedule([A, C]))
    assert "aligned_alloc" in mod.get_source("ll")
    with pytest.raises(dlc.DlcError, match="main failed: out of memory"):
        mod(np.ones(4, np.float32), np.zeros(4, np.float32))


# -- export and load ---------------------------------------------------------------------------
def test_export_writes_a_shared_library(mod, tmp_path):
    path = tmp_path / "k.so"
    mod.export_library(path)
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data == mod.library_bytes
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["k.so"]
    loaded = load_module(str(path))
    assert loaded.metadata == mod.metadata
    a, b, c = _args()
    loaded(a, b, c)
    np.testing.assert_array_equal(c, _expected(a, b))
    with pytest.raises(dlc.ArgumentError, match="must have dtype float32"):
        loaded(a.astype(np.float64), b, c)
    mod.export_library(path)  # overwriting is fine
    assert path.read_bytes() == data


_NO_LLVMLITE = textwrap.dedent("""
    import sys
    sys.modules["llvmlite"] = None  # any "import llvmlite..." now raises ImportError
    import ctypes, json
    import numpy as np

    path, symbol = sys.argv[1], sys.argv[2]
    a = np.arange(32, dtype=np.float32).reshape(4, 8)
    b = np.arange(8, dtype=np.int32) * 10
    want = a * 2 + b.astype(np.float32)

    lib = ctypes.CDLL(path)                       # 1. ctypes alone
    fn = getattr(lib, symbol)
    fn.restype = ctypes.c_int32
    fn.argtypes = [ctypes.c_void_p] * 3
    c = np.zeros((4, 8), np.float32)
    status = fn(a.ctypes.data, b.ctypes.data, c.ctypes.data)
    by_ctypes = status == 0 and bool((c == want).all())

    import dlc.runtime                            # 2. the runtime
    mod = dlc.runtime.load_module(path)
    c = np.zeros((4, 8), np.float32)
    mod(a, b, c)
    try:
        import llvmlite  # noqa: F401
        blocked = False
    except ImportError:
        blocked = True
    print(json.dumps({"ctypes": by_ctypes, "runtime": bool((c == want).all()),
                      "blocked": blocked,
                      "llvmlite_loaded": any(m.startswith("llvmlite.") for m in sys.modules)}))
""")


def test_exported_library_runs_without_llvmlite(mod, tmp_path):
    path = tmp_path / "k.so"
    mod.export_library(path)
    symbol = mod.metadata["functions"][0]["symbol"]
    assert symbol == "dlc_addmul"
    proc = subprocess.run([sys.executable, "-c", _NO_LLVMLITE, str(path), symbol],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {
        "ctypes": True, "runtime": True, "blocked": True, "llvmlite_loaded": False}


def test_load_missing_file(tmp_path):
    with pytest.raises(dlc.ArtifactError, match="no such file"):
        load_module(tmp_path / "missing.so")


def test_load_directory(tmp_path):
    with pytest.raises(dlc.ArtifactError):
        load_module(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello, world\n", b"\x7fEL", b"MZ\x90\x00" * 64],
                         ids=["empty", "text", "short", "pe"])
def test_load_non_elf(tmp_path, content):
    path = tmp_path / "bad.so"
    path.write_bytes(content)
    with pytest.raises(dlc.ArtifactError, match="not a shared library"):
        load_module(path)


def test_load_wrong_kind_of_elf(mod, tmp_path):
    data = bytearray(mod.library_bytes)
    data[16] = 1  # e_type = ET_REL: an object file, not a shared library
    path = tmp_path / "obj.so"
    path.write_bytes(bytes(data))
    with pytest.raises(dlc.ArtifactError, match="not an x86-64 shared library"):
        load_module(path)


def test_load_elf_with_undersized_program_headers(mod, tmp_path):
    """Headers that claim 1-byte program header entries ending at the end of the file: the
    check reads none of them past the end."""
    data = bytearray(mod.library_bytes)
    struct.pack_into("<Q", data, 32, len(data) - 1)  # e_phoff
    struct.pack_into("<HH", data, 54, 1, 1)  # e_phentsize, e_phnum
    path = tmp_path / "bad.so"
    path.write_bytes(bytes(data))
    with pytest.raises(dlc.ArtifactError, match="program headers of 1 bytes"):
        load_module(path)


def test_load_library_not_built_by_dlc(tmp_path):
    from dlc.codegen.llvm.machine import libm_path

    with pytest.raises(dlc.ArtifactError, match="not built by dlc"):
        load_module(libm_path())


_TRUNCATED = textwrap.dedent("""
    import json, sys
    import dlc
    from dlc.runtime import load_module

    data = open(sys.argv[1], "rb").read()
    results = []
    for cut in (64, 1000, len(data) // 2, len(data) - 200, len(data) - 1):
        path = sys.argv[1] + f".{cut}"
        with open(path, "wb") as f:
            f.write(data[:cut])
        try:
            load_module(path)
            results.append("loaded")
        except dlc.ArtifactError as err:
            results.append("truncated" if "truncated" in str(err) else str(err))
    print(json.dumps(results))
""")


def test_load_truncated_library(mod, tmp_path):
    """Truncated libraries raise ArtifactError (the dynamic loader alone would map pages past
    the end of the file and die of SIGBUS); run in a subprocess so a crash is a failure."""
    path = tmp_path / "k.so"
    mod.export_library(path)
    proc = subprocess.run([sys.executable, "-c", _TRUNCATED, str(path)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ["truncated"] * 5


def _leftovers(directory) -> list[str]:
    return [p for p in os.listdir(directory) if p.startswith(".dlc-export")]


def test_export_to_missing_directory(mod, tmp_path):
    target = tmp_path / "missing" / "k.so"
    with pytest.raises(dlc.DlcError, match="does not exist"):
        mod.export_library(target)
    assert not target.parent.exists()


def test_export_onto_a_directory_leaves_nothing(mod, tmp_path):
    (tmp_path / "k.so").mkdir()
    (tmp_path / "k.so" / "keep").write_text("x")
    with pytest.raises(dlc.DlcError, match="cannot write"):
        mod.export_library(tmp_path / "k.so")
    assert _leftovers(tmp_path) == []
    assert (tmp_path / "k.so" / "keep").read_text() == "x"


def test_export_to_unwritable_directory(mod, tmp_path):
    if os.geteuid() == 0:  # root writes anywhere a mode allows nothing; /proc refuses files
        directory = "/proc"
    else:
        directory = tmp_path / "ro"
        directory.mkdir()
        directory.chmod(0o555)
    target = os.path.join(directory, "k.so")
    with pytest.raises(dlc.DlcError, match="cannot write"):
        mod.export_library(target)
    assert not os.path.exists(target)
    if directory != "/proc":
        assert _leftovers(directory) == []


def test_export_failure_midway_leaves_nothing(mod, tmp_path, monkeypatch):
    """A failure after the temporary file exists (here: the final rename) removes it."""
    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(dlc.DlcError, match="No space left on device"):
        mod.export_library(tmp_path / "k.so")
    assert os.listdir(tmp_path) == []


# -- unloading ----------------------------------------------------------------------------
def _mapped_libraries() -> int:
    """Memory mappings of dlc's loaded libraries (their files are named dlc-*.so)."""
    with open("/proc/self/maps") as f:
        return sum(1 for line in f if "/dlc-" in line and ".so" in line)


def _doubler(name: str) -> Module:
    a = te.placeholder((4096,), "float32", name="a")
    b = te.compute((4096,), lambda i: a[i] * 2.0, name="b")
    sch = dlc.Schedule([a, b])
    outer, _ = sch.split(sch.get_loops(b)[0], factor=64)
    sch.parallel(outer)
    module = dlc.build(sch, name=name)
    module.set_num_threads(2)
    return module


def test_a_module_nothing_uses_is_unloaded_and_openmp_stays():
    """Dropping a module unmaps its library; parallel kernels loaded afterwards still run
    (libgomp, whose threads outlive the library that started them, is never unloaded)."""
    import gc

    x = np.arange(4096, dtype=np.float32)
    y = np.empty_like(x)
    gc.collect()
    before = _mapped_libraries()
    modules = [_doubler(f"unload{k}") for k in range(8)]
    for k in range(8):
        modules[k](x, y)
    assert _mapped_libraries() > before
    kernel = modules[0].get_function("unload0")
    del modules
    gc.collect()
    assert _mapped_libraries() > before  # a kernel keeps its module loaded
    kernel(x, y)
    del kernel
    gc.collect()
    assert _mapped_libraries() == before
    again = _doubler("again")
    y[:] = 0
    again(x, y)
    np.testing.assert_array_equal(y, x * 2)
