"""dlc.build: what it accepts, the symbols it exports, and its error messages."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

import dlc
from dlc import te
from dlc.build import entry_needs


def _func(name="main", n=4):
    A = te.placeholder((n,), "float32", name="A")
    B = te.compute((n,), lambda i: A[i] + 1.0, name="B")
    return dlc.Schedule([A, B], name=name)


def test_schedule_primfunc_and_list():
    a = np.arange(4, dtype=np.float32)
    for obj in (_func(), dlc.lower(_func()), [_func()], (dlc.lower(_func("x")),)):
        b = np.zeros(4, np.float32)
        dlc.build(obj)(a, b)
        np.testing.assert_array_equal(b, a + 1)


def test_name_argument_renames_the_function():
    mod = dlc.build(_func(), name="renamed")
    assert list(mod.functions) == ["renamed"]
    assert mod.metadata["functions"][0]["symbol"] == "dlc_renamed"


def test_metadata_describes_parameters():
    mod = dlc.build(_func(), target="llvm -mcpu=haswell -num-threads=3")
    meta = mod.metadata
    assert meta["target"] == "llvm -mcpu=haswell -num-threads=3"
    assert meta["cpu"] == "haswell" and meta["num_threads"] == 3
    assert meta["functions"][0]["params"] == [
        {"name": "A", "shape": [4], "dtype": "float32", "output": False},
        {"name": "B", "shape": [4], "dtype": "float32", "output": True}]
    assert meta["entries"] == {}  # no entry functions in this build


def test_entry_needs_are_the_bytes_each_location_is_touched():
    """What a runtime checks an execution plan against: the end of the furthest arena and
    weights byte, and the bytes behind each input and output pointer (0 when untouched)."""
    specs = [{"symbol": "dlc_a", "params": [{"shape": [4], "dtype": "float32"},
                                            {"shape": [2, 3], "dtype": "int64"}]},
             {"symbol": "dlc_b", "params": [{"shape": [3], "dtype": "uint8"},
                                            {"shape": [4], "dtype": "float32"}]}]
    calls = [("dlc_a", [["input", 1], ["arena", 64]]),
             ("dlc_b", [["weights", 128], ["output", 0]]),
             ("dlc_a", [["arena", 0], ["output", 2]])]
    assert entry_needs(calls, specs) == {"arena_bytes": 64 + 48, "weights_bytes": 131,
                                         "input_bytes": [0, 16], "output_bytes": [16, 0, 48]}
    assert entry_needs([], specs) == {"arena_bytes": 0, "weights_bytes": 0,
                                      "input_bytes": [], "output_bytes": []}


@pytest.mark.parametrize("name, symbol", [("main", "dlc_main"), ("my-op.v2", "dlc_my_op_v2"),
                                          ("conv 3x3", "dlc_conv_3x3")])
def test_exported_symbols(name, symbol, tmp_path):
    mod = dlc.build(_func(name))
    assert mod.metadata["functions"][0]["symbol"] == symbol
    path = tmp_path / "k.so"
    mod.export_library(path)
    lib = ctypes.CDLL(str(path))
    for exported in (symbol, "dlc_metadata", "dlc_set_num_threads", "dlc_get_num_threads"):
        assert hasattr(lib, exported), exported
    get = lib.dlc_get_num_threads
    get.restype = ctypes.c_int32
    assert get() == 0  # nothing set it in this copy: libgomp's default applies


def test_set_num_threads_reaches_the_library():
    mod = dlc.build(_func())
    get = mod._lib.dlc_get_num_threads
    get.restype = ctypes.c_int32
    mod.set_num_threads(3)
    assert get() == 3


@pytest.mark.parametrize("names, message", [
    (("a-b", "a_b"), "'a-b' and function 'a_b' would both be exported as dlc_a_b"),
    (("main", "set_num_threads"), "'set_num_threads' would be exported as dlc_set_num_threads"),
    (("metadata",), "dlc_metadata, a name the runtime API uses"),
    (("num_threads",), "dlc_num_threads, a name the runtime API uses"),
    (("f", "f"), "distinct names"),
])
def test_symbol_clashes_raise(names, message):
    with pytest.raises(dlc.DlcError, match=message):
        dlc.build([dlc.lower(_func(name)) for name in names])


@pytest.mark.parametrize("obj, message", [
    (42, "build takes a Schedule or a PrimFunc, got int"),
    ([_func(), "x"], "got str"),
])
def test_bad_objects_raise(obj, message):
    with pytest.raises(dlc.DlcError, match=message):
        dlc.build(obj)


@pytest.mark.parametrize("target, error, message", [
    ("cuda", dlc.TargetError, "not available in this build"),
    ("metal", dlc.TargetError, "unknown target kind"),
    ("llvm -mcpu", dlc.TargetError, "malformed target option"),
    ("llvm -fast=1", dlc.TargetError, "unknown option -fast"),
    ("llvm -num-threads=two", dlc.TargetError, "not an integer"),
])
def test_bad_targets_raise(target, error, message):
    with pytest.raises(error, match=message):
        dlc.build(_func(), target=target)


def test_thread_bound_loop_is_rejected_on_cpu():
    sch = _func()
    (i,) = sch.get_loops(sch.tensor("B"))
    sch.bind(i, "threadIdx.x")
    with pytest.raises(dlc.TargetError, match="only GPU targets have"):
        dlc.build(sch)


def test_reinterpret_of_bool_raises():
    A = te.placeholder((4,), "int8", name="A")
    B = te.compute((4,), lambda i: te.reinterpret(A[i], "bool"), name="B")
    with pytest.raises(dlc.DlcError, match="bool"):
        dlc.build(dlc.Schedule([A, B]))


def test_bool_subtraction_raises():
    A = te.placeholder((4,), "bool", name="A")
    B = te.compute((4,), lambda i: A[i] - A[i], name="B")
    with pytest.raises(dlc.DlcError, match="'-' is not defined on bool"):
        dlc.build(dlc.Schedule([A, B]))
