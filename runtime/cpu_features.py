"""Which instruction-set extensions this CPU has, read without LLVM (Linux /proc/cpuinfo),
and the mapping from LLVM feature names to them."""

from __future__ import annotations

import functools

# LLVM feature name -> /proc/cpuinfo flag. Features absent from this table are not ISA
# extensions a kernel depends on (tuning flags, or always present on x86-64).
LLVM_TO_CPUINFO = {
    "sse3": "pni", "ssse3": "ssse3", "sse4.1": "sse4_1", "sse4.2": "sse4_2", "popcnt": "popcnt",
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


def required_features(llvm_features: str) -> list:
    """The ISA extensions (cpuinfo names) a feature string like "+avx2,-avx512f" enables."""
    required = []
    for item in llvm_features.split(","):
        item = item.strip()
        if item.startswith("+") and item[1:] in LLVM_TO_CPUINFO:
            required.append(LLVM_TO_CPUINFO[item[1:]])
    return sorted(set(required))


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
