"""Schedules as data: every primitive applied to a Schedule is recorded in a Trace that
serializes to JSON and replays to the identical loop nest (tuning logs store these)."""

from __future__ import annotations

import json

from dlc.errors import ScheduleError

TRACE_VERSION = 1


class Trace:
    """An ordered list of primitive applications, each a JSON-friendly dict."""

    def __init__(self, records=None):
        self.records: list[dict] = [dict(r) for r in (records or [])]

    def append(self, record: dict) -> None:
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)

    def __eq__(self, other) -> bool:
        return isinstance(other, Trace) and self.records == other.records

    def to_json(self) -> str:
        return json.dumps({"version": TRACE_VERSION, "primitives": self.records},
                          sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Trace:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ScheduleError(f"trace is not valid JSON: {err}") from None
        if not isinstance(data, dict) or data.get("version") != TRACE_VERSION:
            raise ScheduleError(f"unsupported trace format (expected version {TRACE_VERSION})")
        records = data.get("primitives")
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise ScheduleError("trace has no list of primitives")
        return Trace(records)

    def apply(self, sch) -> None:
        """Replay every primitive on ``sch`` (a fresh Schedule of the same tensors)."""
        for k, record in enumerate(self.records):
            try:
                _replay(sch, record)
            except ScheduleError as err:
                raise ScheduleError(f"replaying primitive {k} ({record.get('primitive')}): "
                                    f"{err}") from None

    def to_python(self) -> str:
        """The primitives as Python lines calling the schedule API on ``sch`` (a Schedule of
        the same tensors), which replay them, e.g.
        ``sch.split(sch.loop('C', 'i'), factor=4)``."""
        lines = []
        for k, record in enumerate(self.records):
            try:
                lines.append(_to_python(record))
            except ScheduleError as err:
                raise ScheduleError(f"primitive {k} ({record.get('primitive')}): {err}") from None
        return "\n".join(lines)

    def __repr__(self) -> str:
        lines = []
        for r in self.records:
            args = ", ".join(f"{k}={v!r}" for k, v in r.items() if k != "primitive")
            lines.append(f"{r['primitive']}({args})")
        return "\n".join(lines)


def _replay(sch, r: dict) -> None:
    kind = r.get("primitive")

    def loop(name):
        return sch.loop(r["stage"], name)

    if kind == "split":
        sch.split(loop(r["loop"]), factor=r.get("factor"), nparts=r.get("nparts"))
    elif kind == "tile":
        sch.tile(loop(r["x"]), loop(r["y"]), r["x_factor"], r["y_factor"])
    elif kind == "fuse":
        sch.fuse(*[loop(name) for name in r["loops"]])
    elif kind == "reorder":
        sch.reorder(*[loop(name) for name in r["loops"]])
    elif kind in ("vectorize", "unroll", "parallel"):
        getattr(sch, kind)(loop(r["loop"]))
    elif kind == "bind":
        sch.bind(loop(r["loop"]), r["thread"])
    elif kind == "compute_at":
        sch.compute_at(r["stage"], sch.loop(r["target"], r["loop"]))
    elif kind in ("compute_inline", "compute_root"):
        getattr(sch, kind)(r["stage"])
    elif kind == "cache_read":
        sch.cache_read(r["stage"], r["scope"], r["readers"])
    elif kind == "cache_write":
        sch.cache_write(r["stage"], r["scope"])
    elif kind == "rfactor":
        sch.rfactor(r["stage"], loop(r["loop"]), factor_axis=r.get("factor_axis", 0))
    else:
        raise ScheduleError(f"unknown primitive {kind!r} in trace")


def _to_python(r: dict) -> str:
    """One primitive as the schedule-API call that ``_replay`` makes."""
    kind = r.get("primitive")
    try:
        stage = repr(r["stage"])

        def loop(name):
            return f"sch.loop({stage}, {name!r})"

        if kind == "split":
            how = (f"factor={r['factor']!r}" if r.get("factor") is not None
                   else f"nparts={r['nparts']!r}")
            return f"sch.split({loop(r['loop'])}, {how})"
        if kind == "tile":
            return (f"sch.tile({loop(r['x'])}, {loop(r['y'])}, {r['x_factor']!r}, "
                    f"{r['y_factor']!r})")
        if kind in ("fuse", "reorder"):
            return f"sch.{kind}({', '.join(loop(name) for name in r['loops'])})"
        if kind in ("vectorize", "unroll", "parallel"):
            return f"sch.{kind}({loop(r['loop'])})"
        if kind == "bind":
            return f"sch.bind({loop(r['loop'])}, {r['thread']!r})"
        if kind == "compute_at":
            return f"sch.compute_at({stage}, sch.loop({r['target']!r}, {r['loop']!r}))"
        if kind in ("compute_inline", "compute_root"):
            return f"sch.{kind}({stage})"
        if kind == "cache_read":
            return f"sch.cache_read({stage}, {r['scope']!r}, {list(r['readers'])!r})"
        if kind == "cache_write":
            return f"sch.cache_write({stage}, {r['scope']!r})"
        if kind == "rfactor":
            return (f"sch.rfactor({stage}, {loop(r['loop'])}, "
                    f"factor_axis={r.get('factor_axis', 0)!r})")
    except (KeyError, TypeError) as err:
        raise ScheduleError(f"no field {err}") from None
    raise ScheduleError(f"unknown primitive {kind!r} in trace (written by a newer dlc?)")
