"""What schedules read of a CPU target: vector width, registers, FMA units, caches."""

import pytest

from dlc.hardware import cpu_info
from dlc.target import Target


@pytest.mark.parametrize("cpu, mattr, bits, registers, fma", [
    ("sapphirerapids", "", 512, 32, 2),
    ("znver4", "", 512, 32, 1),
    ("znver4", "-avx512f", 256, 16, 1),
    ("haswell", "", 256, 16, 2),
    ("znver3", "", 256, 16, 2),
    ("x86-64", "", 128, 16, 1),
    ("x86-64", "+avx2,+fma", 256, 16, 2),
])
def test_vector_width_registers_and_fma_units_follow_the_target(cpu, mattr, bits, registers,
                                                                fma):
    info = Target.parse(f"llvm -mcpu={cpu}" + (f" -mattr={mattr}" if mattr else "")).hardware
    assert (info.vector_bits, info.vector_registers, info.fma_units) == (bits, registers, fma)


def test_lanes_per_dtype():
    wide, narrow = cpu_info("sapphirerapids", ""), cpu_info("haswell", "")
    assert [wide.lanes(d) for d in ("float32", "float64", "float16", "int8", "bool")] == \
        [16, 8, 16, 32, 32]
    assert [narrow.lanes(d) for d in ("float32", "float64", "float16", "int8", "bool")] == \
        [8, 4, 8, 32, 32]


def test_host_caches_and_peak_are_read_from_this_machine():
    info = Target.parse("llvm").hardware
    assert info.measured and info.cores >= 1
    assert 8 * 1024 <= info.l1d_bytes <= info.l2_bytes
    if info.ghz is not None:
        lanes = info.lanes("float32")
        assert info.peak_gflops(1) == pytest.approx(info.fma_units * lanes * 2 * info.ghz)
    other = cpu_info("haswell" if info.name != "haswell" else "znver4", "")
    assert not other.measured and other.ghz is None and other.peak_gflops() is None


def test_panel_widths_need_fewest_loads_per_multiply_add():
    assert cpu_info("sapphirerapids", "").panel_vectors() == (4, 3, 2, 1)
    assert cpu_info("haswell", "").panel_vectors() == (3, 2, 4, 1)
    assert [cpu_info("haswell", "").tile_rows(v) for v in (1, 2, 3, 4)] == [14, 6, 4, 2]
