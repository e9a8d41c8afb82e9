"""bind: map a loop to a GPU thread index. The llvm (CPU) target rejects bound loops."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import add2d, run_interpreter

import dlc


def bound_schedule():
    A, B, C, inputs, ref = add2d(10, 8)
    sch = dlc.Schedule([A, B, C])
    i, j = sch.get_loops(C)
    io, ii = sch.split(i, factor=4)
    sch.bind(io, "blockIdx.x")
    sch.bind(ii, "threadIdx.x")
    return sch, inputs, ref


def test_bound_loops_are_printed_with_their_tag_and_not_partitioned():
    sch, inputs, ref = bound_schedule()
    text = str(dlc.lower(sch))
    assert 'for i.outer in thread_binding(3, "blockIdx.x"):' in text
    assert 'for i.inner in thread_binding(4, "threadIdx.x"):' in text
    assert "if likely(i.outer * 4 + i.inner < 10):" in text  # kept: GPU threads cannot split
    np.testing.assert_allclose(run_interpreter(sch, inputs)[0], ref, rtol=1e-6)


def test_bind_is_recorded_and_kind_is_visible():
    sch, _, _ = bound_schedule()
    assert sch.trace.records[-1] == {"primitive": "bind", "stage": "C", "loop": "i.inner",
                                     "thread": "threadIdx.x"}
    assert sch.get_loops(sch.tensor("C"))[0].kind is dlc.ForKind.THREAD_BINDING


def test_building_a_bound_schedule_for_the_cpu_is_a_target_error():
    sch, _, _ = bound_schedule()
    with pytest.raises(dlc.TargetError, match="loop i.outer is bound to blockIdx.x, which only "
                       "GPU targets have"):
        dlc.build(sch, target="llvm")
