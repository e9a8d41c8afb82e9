"""Default schedules for every op, and tunable templates per target (cpu/, cuda/).

``dlc.tir.schedule`` is the schedule API (primitives); this package is the library of
per-op schedules built with it. Ops name their default schedule (``OpDef.schedule``);
``apply_schedule`` looks the name up here.
"""

from __future__ import annotations

from dlc.errors import DlcError
from dlc.schedules.generic import schedule_generic

SCHEDULES = {"generic": schedule_generic}


def register_schedule(name: str):
    """Decorator: make a schedule function available under ``name``."""

    def wrap(fn):
        SCHEDULES[name] = fn
        return fn

    return wrap


def apply_schedule(name: str, sch, outputs, anchor=None):
    """Schedule a kernel: ``outputs`` are its output tensors, ``anchor`` the tensor of the
    op whose schedule ``name`` is (a fused group's convolution, say; default: the first
    output). Schedules take ``(sch, outputs, anchor)``."""
    try:
        fn = SCHEDULES[name]
    except KeyError:
        raise DlcError(f"no schedule named {name!r}; known: {', '.join(sorted(SCHEDULES))}") \
            from None
    return fn(sch, outputs, anchor if anchor is not None else outputs[0])


# Schedule modules register themselves (they import register_schedule from here).
from dlc.schedules.cpu import conv2d, dense, matmul, reduction  # noqa: E402, F401
