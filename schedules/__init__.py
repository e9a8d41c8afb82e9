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


def apply_schedule(name: str, sch, outputs):
    try:
        fn = SCHEDULES[name]
    except KeyError:
        raise DlcError(f"no schedule named {name!r}; known: {', '.join(sorted(SCHEDULES))}") \
            from None
    return fn(sch, outputs)
