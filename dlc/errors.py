"""Typed errors raised by dlc. Every error a user can cause derives from DlcError."""

from __future__ import annotations


class DlcError(Exception):
    """Base class of every error dlc raises on purpose."""


class DlcWarning(UserWarning):
    """Something dlc skipped or worked around, the result still correct (a torn line of a
    tuning log, records for another CPU): shown as one line, never raised."""


class DlcTypeError(DlcError, TypeError):
    """An expression or tensor was built with incompatible dtypes or arguments."""


class ScheduleError(DlcError):
    """A schedule primitive was asked for something illegal."""


class LoweringError(DlcError):
    """A schedule could not be lowered to loops (e.g. an unvectorizable body)."""


class TargetError(DlcError):
    """A target string is malformed, or the schedule cannot run on the target."""


class CodegenError(DlcError):
    """Native code generation, optimization or linking failed."""


class ArgumentError(DlcError, ValueError):
    """A compiled function or model was called with wrong arguments."""


class UnsupportedOpError(DlcError):
    """A model uses operators dlc does not support (all of them are listed)."""


class ModelError(DlcError):
    """A model is malformed: bad bytes, dangling edges, wrong attribute types, cycles."""


class ArtifactError(DlcError):
    """A compiled artifact is corrupted, truncated, of another version, or not for this CPU."""


class InternalError(DlcError):
    """dlc failed on an input it accepted: a bug in dlc (please report it)."""
