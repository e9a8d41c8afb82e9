"""Default schedules for every op, and tunable templates per target (cpu/, cuda/).

``dlc.tir.schedule`` is the schedule API (primitives); this package is the library of
per-op schedules built with it. Ops name their schedule family (``OpDef.schedule``);
``apply_schedule`` looks up the template registered for that family and the target's kind.

Every schedule is a template: ``fn(sch, outputs, anchor, cfg)``, where ``cfg`` (see
``dlc.autotune.space``) carries the target (``cfg.target``, its hardware in
``cfg.target.hardware``) and answers the template's knobs: ``cfg.knob(name, choices,
default)``. The default configuration is today's rule-based choice.
"""

from __future__ import annotations

from dlc.errors import DlcError
from dlc.schedules.generic import schedule_generic

#: (op family, target kind) -> template
SCHEDULES = {("generic", "llvm"): schedule_generic}


def register_schedule(family: str, target_kind: str = "llvm"):
    """Decorator: make a template the schedule of op ``family`` on ``target_kind``."""

    def wrap(fn):
        SCHEDULES[(family, target_kind)] = fn
        return fn

    return wrap


def apply_schedule(family: str, sch, outputs, anchor=None, cfg=None):
    """Schedule a kernel with the template of ``family`` for ``cfg.target``: ``outputs``
    are its output tensors, ``anchor`` the tensor of the op whose family it is (a fused
    group's convolution, say; default: the first output); ``cfg`` the configuration
    (default: the untuned one, for the host CPU)."""
    cfg = cfg if cfg is not None else default_config()
    kind = cfg.target.kind
    try:
        fn = SCHEDULES[(family, kind)]
    except KeyError:
        known = sorted(f for f, k in SCHEDULES if k == kind)
        raise DlcError(f"no {kind} schedule for op family {family!r}; known: "
                       f"{', '.join(known) or '(none)'}") from None
    return fn(sch, outputs, anchor if anchor is not None else outputs[0], cfg)


def default_config(target=None):
    """The untuned configuration for ``target`` (default: the host CPU)."""
    from dlc.autotune.space import DefaultConfig
    from dlc.target import Target

    return DefaultConfig(Target.parse(target))


# Schedule modules register themselves (they import register_schedule from here).
from dlc.schedules.cpu import conv2d, dense, matmul, reduction, winograd  # noqa: E402, F401
