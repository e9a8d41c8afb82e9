"""Which instruction-set extensions this CPU has, read without LLVM (Linux /proc/cpuinfo),
and which ones code compiled for an LLVM CPU name and feature string needs."""

from __future__ import annotations

import functools

# LLVM feature name -> /proc/cpuinfo flag. Features absent from this table are not ISA
# extensions a kernel depends on (tuning flags, or always present on x86-64).
LLVM_TO_CPUINFO = {
    "sse3": "pni", "ssse3": "ssse3", "sse4.1": "sse4_1", "sse4.2": "sse4_2", "popcnt": "popcnt",
    "cx16": "cx16", "sahf": "lahf_lm", "xsave": "xsave",
    "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c", "bmi": "bmi1", "bmi2": "bmi2",
    "lzcnt": "abm", "movbe": "movbe", "aes": "aes", "pclmul": "pclmulqdq", "sha": "sha_ni",
    "gfni": "gfni", "vaes": "vaes", "vpclmulqdq": "vpclmulqdq", "avx512f": "avx512f",
    "avx512cd": "avx512cd", "avx512bw": "avx512bw", "avx512dq": "avx512dq",
    "avx512vl": "avx512vl", "avx512vnni": "avx512_vnni", "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512_fp16", "avx512ifma": "avx512ifma", "avx512vbmi": "avx512vbmi",
    "avx512vbmi2": "avx512_vbmi2", "avx512bitalg": "avx512_bitalg",
    "avx512vpopcntdq": "avx512_vpopcntdq", "avxvnni": "avx_vnni", "amx-tile": "amx_tile",
    "amx-int8": "amx_int8", "amx-bf16": "amx_bf16",
}

# The extensions (cpuinfo names) implied by common ``-mcpu`` names, so that an artifact
# compiled with ``--target 'llvm -mcpu=x86-64-v3'`` (no -mattr) still records what it needs.
_V2 = {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}
_V3 = _V2 | {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
_V4 = _V3 | {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
_HASWELL = _V3 | {"aes", "pclmulqdq"}
_SKX = _V4 | {"aes", "pclmulqdq"}
_CLX = _SKX | {"avx512_vnni"}
_ICX = _CLX | {"avx512vbmi", "avx512_vbmi2", "avx512_bitalg", "avx512_vpopcntdq",
               "avx512ifma", "gfni", "vaes", "vpclmulqdq", "sha_ni"}
_SPR = _ICX | {"avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}
_ZEN = _HASWELL | {"sha_ni"}
_ZEN3 = _ZEN | {"vaes", "vpclmulqdq"}
_ZEN4 = _ZEN3 | _V4 | {"avx512_vnni", "avx512_bf16", "avx512vbmi", "avx512_vbmi2",
                      "avx512_bitalg", "avx512_vpopcntdq", "avx512ifma", "gfni"}
CPU_FEATURES = {
    "x86-64": set(), "generic": set(), "x86-64-v2": _V2, "x86-64-v3": _V3, "x86-64-v4": _V4,
    "nehalem": _V2, "westmere": _V2 | {"aes", "pclmulqdq"},
    "haswell": _HASWELL, "broadwell": _HASWELL, "skylake": _HASWELL,
    "skylake-avx512": _SKX, "cascadelake": _CLX, "cooperlake": _CLX | {"avx512_bf16"},
    "icelake-client": _ICX, "icelake-server": _ICX, "tigerlake": _ICX, "rocketlake": _ICX,
    "sapphirerapids": _SPR, "alderlake": _HASWELL | {"avx_vnni", "gfni", "vaes", "vpclmulqdq",
                                                     "sha_ni"},
    "znver1": _ZEN, "znver2": _ZEN, "znver3": _ZEN3, "znver4": _ZEN4,
}


def required_features(llvm_features: str, cpu: str | None = None) -> list:
    """The ISA extensions (cpuinfo names) that code compiled for LLVM CPU ``cpu`` with the
    feature string ``llvm_features`` ("+avx2,-avx512f") may use. A CPU name missing from
    CPU_FEATURES contributes nothing: then only the explicit features are recorded."""
    required = set(CPU_FEATURES.get(cpu or "", ()))
    for item in llvm_features.split(","):
        item = item.strip()
        if item[1:] in LLVM_TO_CPUINFO:
            if item.startswith("+"):
                required.add(LLVM_TO_CPUINFO[item[1:]])
            elif item.startswith("-"):
                required.discard(LLVM_TO_CPUINFO[item[1:]])
    return sorted(required)


@functools.cache
def host_flags() -> frozenset | None:
    """Flags of this CPU, or None when they cannot be read (non-Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        return None
    return None


def missing_features(required) -> list:
    """Required features this CPU lacks ([] when all present or unknowable)."""
    flags = host_flags()
    if flags is None:
        return []
    return [f for f in required if f not in flags]
