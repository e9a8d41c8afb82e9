"""Targets parsed from strings such as "llvm", "llvm -mcpu=znver4 -num-threads=2" or
"cuda -arch=sm_90"."""

from __future__ import annotations

from dataclasses import dataclass, field

from dlc.errors import TargetError

_KINDS = ("llvm", "cuda")
#: The kinds this build of dlc can generate code for ("cuda" parses, for tuning logs and
#: artifacts that name it, but has no code generator yet).
AVAILABLE_KINDS = ("llvm",)
_OPTIONS = {
    "llvm": ("mcpu", "mattr", "mtriple", "num-threads", "opt-level"),
    "cuda": ("arch", "max-threads-per-block", "opt-level"),
}


@dataclass(frozen=True)
class Target:
    """A compilation target. Use :func:`Target.parse` or pass the string to ``dlc.build``."""

    kind: str
    options: dict = field(default_factory=dict)

    @staticmethod
    def parse(text: str | Target | None) -> Target:
        """Parse a target string; None and "" mean the host CPU ("llvm")."""
        if isinstance(text, Target):
            return text
        if text is None or not str(text).strip():
            text = "llvm"
        words = str(text).split()
        kind = words[0]
        if kind not in _KINDS:
            raise TargetError(f"unknown target kind {kind!r} in {text!r}; expected one of "
                              f"{', '.join(_KINDS)} (e.g. 'llvm -mcpu=znver4')")
        options = {}
        for word in words[1:]:
            if not word.startswith("-") or "=" not in word:
                raise TargetError(f"malformed target option {word!r} in {text!r}; "
                                  "options look like -name=value")
            name, value = word[1:].split("=", 1)
            if name not in _OPTIONS[kind]:
                raise TargetError(f"unknown option -{name} for target {kind!r}; known: "
                                  + ", ".join("-" + o for o in _OPTIONS[kind]))
            options[name] = value
        for name in ("num-threads", "opt-level", "max-threads-per-block"):
            if name in options:
                try:
                    number = int(options[name])
                except ValueError:
                    raise TargetError(f"-{name}={options[name]!r} is not an integer") from None
                if number < (0 if name == "opt-level" else 1):
                    raise TargetError(f"-{name}={number} is out of range")
                options[name] = number
        return Target(kind, options)

    def check_available(self) -> Target:
        """This target, if this build of dlc can compile for it; else a TargetError."""
        if self.kind not in AVAILABLE_KINDS:
            raise TargetError(f"target {self.kind!r} is not available in this build of dlc "
                              f"(it compiles for {', '.join(repr(k) for k in AVAILABLE_KINDS)}"
                              "); use 'llvm', the default, for this CPU")
        return self

    @property
    def mcpu(self) -> str:
        """The CPU name; the host CPU when not given."""
        if "mcpu" in self.options:
            return self.options["mcpu"]
        from dlc.codegen.llvm.machine import host_cpu_name

        return host_cpu_name()

    @property
    def mattr(self) -> str:
        """LLVM feature string ("+avx2,+fma"); the host's features when no -mcpu is given."""
        if "mattr" in self.options:
            return self.options["mattr"]
        if "mcpu" in self.options:
            return ""
        from dlc.codegen.llvm.machine import host_cpu_features

        return host_cpu_features()

    @property
    def hardware(self):
        """The :class:`dlc.hardware.CpuInfo` schedules derive their defaults from (vector
        width, registers, FMA units, caches)."""
        if self.kind != "llvm":
            raise TargetError(f"target {self.kind!r} has no CPU description")
        from dlc.hardware import cpu_info

        return cpu_info(self.mcpu, self.mattr)

    @property
    def num_threads(self) -> int | None:
        return self.options.get("num-threads")

    @property
    def opt_level(self) -> int:
        return self.options.get("opt-level", 3)

    def __str__(self) -> str:
        parts = [self.kind] + [f"-{k}={v}" for k, v in self.options.items()]
        return " ".join(parts)

    def __hash__(self) -> int:
        return hash(str(self))

    def __eq__(self, other) -> bool:
        return isinstance(other, Target) and str(self) == str(other)
