"""What a CPU target offers the schedules: vector width, vector registers, FMA units,
cache sizes, cores and clock.

Vector width and register count follow from the target's features (``-mattr``, or the
features LLVM reports for ``-mcpu`` / the host). FMA units per core come from the CPU name
(a short table of the cores whose count differs from two; the tuner measures what the
table cannot know). Cache sizes, cores and clock are read once from this machine
(``/sys/devices/system/cpu``, ``os.sched_getaffinity``, ``/proc/cpuinfo``) when the target
is the host CPU; for another ``-mcpu`` the caches are typical values of a current server
core and the clock is unknown, stated in ``CpuInfo.measured``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

#: Cores that run at most one vector FMA per cycle at their full vector width (Zen 4
#: executes 512-bit operations as two halves; client Ice Lake / Tiger Lake have one
#: 512-bit FMA port).
ONE_FMA_UNIT = ("znver4", "icelake-client", "tigerlake", "rocketlake", "cannonlake")
#: LLVM CPU names with AVX-512 and with AVX2 + FMA (llvmlite cannot list the features of
#: a CPU other than the host's; unlisted names count as SSE-only: 128-bit vectors).
AVX512_CPUS = ("skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client",
               "icelake-server", "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids",
               "diamondrapids", "znver4", "znver5", "x86-64-v4", "knl", "knm")
AVX2_CPUS = ("haswell", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake",
             "gracemont", "lunarlake", "pantherlake", "clearwaterforest", "sierraforest",
             "grandridge", "znver1", "znver2", "znver3", "bdver4", "x86-64-v3")
#: Cache sizes assumed for a CPU other than this machine's (bytes).
TYPICAL_CACHES = {"l1d": 48 * 1024, "l2": 2 * 1024 * 1024, "l3": 32 * 1024 * 1024}
#: Element types computed in float32 registers (converted on load and store).
WIDENED_TO_FLOAT32 = ("float16", "bfloat16")
#: Most lanes a schedule uses for one vector (wider byte vectors cost more shuffles).
MAX_LANES = 32
#: Rows of a matrix product's register tile on a CPU with 32 vector registers, for panels
#: of 4, 3, 2 or 1 vectors: ``rows * vectors`` accumulators (24 or 28 of AVX-512's 32; the
#: rest hold the panel's vectors; measured on Zen 4).
TILE_ROWS_32 = {4: 6, 3: 8, 2: 14, 1: 28}


@dataclass(frozen=True)
class CpuInfo:
    """The numbers CPU schedules derive their defaults from."""

    name: str
    vector_bits: int
    vector_registers: int
    fma_units: int
    l1d_bytes: int
    l2_bytes: int
    l3_bytes: int
    cores: int
    ghz: float | None
    measured: bool  # caches, cores and clock read from this machine

    def lanes(self, dtype: str) -> int:
        """Lanes of one vector register for elements of ``dtype`` (at most MAX_LANES)."""
        from dlc import dtypes

        if dtype in WIDENED_TO_FLOAT32:
            size = 4
        else:
            try:
                size = dtypes.itemsize(dtype)
            except Exception:  # noqa: BLE001 - sub-byte and unknown types: 64-bit lanes
                size = 8
        return max(1, min(MAX_LANES, self.vector_bits // (8 * max(1, size))))

    def tile_rows(self, vectors: int) -> int:
        """Rows of a float32 register tile whose columns are ``vectors`` vectors: the
        measured table with 32 registers, else as many rows as leave a register per vector
        of the panel and one for the broadcast value."""
        if self.vector_registers == 32 and vectors in TILE_ROWS_32:
            return TILE_ROWS_32[vectors]
        return max(1, (self.vector_registers - vectors - 1) // vectors)

    def panel_vectors(self) -> tuple:
        """Panel widths in vectors (4 to 1), best first: fewest loads per multiply-add in
        the register tile (``(rows + vectors) / (rows * vectors)``; 4, 3, 2, 1 with
        AVX-512's 32 registers, 3, 2, 4, 1 with AVX2's 16)."""
        def loads_per_fma(v: int) -> float:
            rows = self.tile_rows(v)
            return (rows + v) / (rows * v)

        return tuple(sorted((4, 3, 2, 1), key=lambda v: (loads_per_fma(v), -v)))

    def peak_gflops(self, threads: int | None = None) -> float | None:
        """Float32 peak: cores x FMA units x lanes x 2 flops x GHz (None without a clock)."""
        if self.ghz is None:
            return None
        cores = min(threads or self.cores, self.cores)
        return cores * self.fma_units * self.lanes("float32") * 2 * self.ghz


def cpu_info(name: str, features: str) -> CpuInfo:
    """The CpuInfo of a CPU called ``name`` (LLVM's name) with LLVM ``features``."""
    return _cpu_info(name, _canonical(features))


def _canonical(features: str) -> str:
    flags = {f.strip() for f in features.split(",") if f.strip()}
    return ",".join(sorted(flags))


@functools.cache
def _cpu_info(name: str, features: str) -> CpuInfo:
    words = features.split(",") if features else []
    flags = (_llvm_cpu_features(name) | {f[1:] for f in words if f.startswith("+")}) \
        - {f[1:] for f in words if f.startswith("-")}
    if "avx512f" in flags:
        bits, registers = 512, 32
    elif "avx" in flags or "avx2" in flags:
        bits, registers = 256, 16
    else:
        bits, registers = 128, 16
    fma = 1 if name in ONE_FMA_UNIT or not ({"fma", "avx512f"} & flags) else 2
    host = _is_host(name)
    caches = _host_caches() if host else TYPICAL_CACHES
    return CpuInfo(name, bits, registers, fma, caches["l1d"], caches["l2"], caches["l3"],
                   _host_cores(), reported_ghz() if host else None, host)


def _is_host(name: str) -> bool:
    from dlc.codegen.llvm.machine import host_cpu_name

    return name == host_cpu_name()


def _llvm_cpu_features(name: str) -> set:
    """Features LLVM enables for ``-mcpu=name`` alone (the host's when it is the host)."""
    if _is_host(name):
        from dlc.codegen.llvm.machine import host_cpu_features

        return {f[1:] for f in host_cpu_features().split(",") if f.startswith("+")}
    if name in AVX512_CPUS or name.startswith("graniterapids"):
        return {"avx512f", "avx2", "avx", "fma"}
    if name in AVX2_CPUS or name.startswith("arrowlake"):
        return {"avx2", "avx", "fma"}
    if name in ("sandybridge", "ivybridge", "btver2"):
        return {"avx"}
    return set()


def _host_caches() -> dict:
    sizes = dict(TYPICAL_CACHES)
    root = "/sys/devices/system/cpu/cpu0/cache"
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return sizes
    for entry in entries:
        try:
            level = _read(f"{root}/{entry}/level")
            kind = _read(f"{root}/{entry}/type")
            size = _parse_size(_read(f"{root}/{entry}/size"))
        except (OSError, ValueError):
            continue
        key = {("1", "Data"): "l1d", ("2", "Unified"): "l2", ("3", "Unified"): "l3"}.get(
            (level, kind))
        if key:
            sizes[key] = size
    return sizes


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def _parse_size(text: str) -> int:
    units = {"K": 1024, "M": 1024 * 1024, "G": 1024 ** 3}
    if text[-1:] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def _host_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def reported_ghz(cpuinfo: str = "/proc/cpuinfo") -> float | None:
    """The highest "cpu MHz" of this machine, in GHz (None where it cannot be read): the
    nominal clock peak estimates assume (turbo and AVX clocks differ)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    mhz = []
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() == "cpu mhz":
            try:
                mhz.append(float(value))
            except ValueError:
                pass
    return max(mhz) / 1000.0 if mhz and max(mhz) > 0 else None
