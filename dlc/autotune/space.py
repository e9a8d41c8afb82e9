"""Configuration spaces of tunable schedules.

A template declares its knobs where it uses them, AutoTVM-style::

    mr = cfg.knob("mr", (4, 6, 8, 12), default=rule_based_mr)

Run with the untuned configuration (``DefaultConfig``), ``knob`` returns the rule's
``default`` and records the knob; the recorded knobs are the template's
:class:`ConfigSpace` for that workload. Run with a chosen configuration
(``FixedConfig``), ``knob`` returns the chosen value. Knob names are unique within a
template and their choices depend only on the workload and the target, never on the value
of another knob, so one run with the defaults discovers the whole space.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from dlc.errors import ScheduleError


@dataclass(frozen=True)
class Knob:
    """One tunable decision: ``choices`` (JSON scalars, in a meaningful order: neighbours
    are similar) and the rule-based ``default``, one of them."""

    name: str
    choices: tuple
    default: object

    def __post_init__(self):
        if not self.choices:
            raise ScheduleError(f"knob {self.name!r} has no choices")
        if self.default not in self.choices:
            raise ScheduleError(f"knob {self.name!r}: default {self.default!r} is not one of "
                                f"its choices {list(self.choices)}")


class ConfigSpace:
    """The knobs of one template on one workload; a configuration is a dict knob -> value."""

    def __init__(self, knobs=()):
        self.knobs: dict[str, Knob] = {}
        for knob in knobs:
            self.add(knob)

    def add(self, knob: Knob) -> None:
        if knob.name in self.knobs:
            raise ScheduleError(f"knob {knob.name!r} is declared twice")
        self.knobs[knob.name] = knob

    def __len__(self) -> int:
        """The number of configurations."""
        return math.prod(len(k.choices) for k in self.knobs.values())

    def default(self) -> dict:
        return {name: k.default for name, k in self.knobs.items()}

    def check(self, config: dict) -> dict:
        """``config`` if it names every knob with one of its choices; else a ScheduleError."""
        unknown = sorted(set(config) - set(self.knobs))
        if unknown:
            raise ScheduleError(f"configuration names unknown knob(s) {', '.join(unknown)}; "
                                f"the knobs are {', '.join(self.knobs) or '(none)'}")
        for name, knob in self.knobs.items():
            if name not in config:
                raise ScheduleError(f"configuration has no value for knob {name!r}")
            if config[name] not in knob.choices:
                raise ScheduleError(f"knob {name!r} = {config[name]!r} is not one of "
                                    f"{list(knob.choices)}")
        return config

    def index(self, config: dict) -> int:
        """The position of ``config`` in the space (mixed radix, first knob slowest)."""
        position = 0
        for name, knob in self.knobs.items():
            position = position * len(knob.choices) + knob.choices.index(config[name])
        return position

    def at(self, position: int) -> dict:
        """The configuration at ``position`` (inverse of ``index``)."""
        if not 0 <= position < len(self):
            raise ScheduleError(f"configuration {position} is outside a space of {len(self)}")
        config = {}
        for name, knob in reversed(self.knobs.items()):
            position, digit = divmod(position, len(knob.choices))
            config[name] = knob.choices[digit]
        return {name: config[name] for name in self.knobs}

    def sample(self, rng: random.Random) -> dict:
        return {name: rng.choice(k.choices) for name, k in self.knobs.items()}

    def mutate(self, config: dict, rng: random.Random, changes: int = 1) -> dict:
        """``config`` with ``changes`` knobs moved to a neighbouring choice (or, one time in
        four, any choice)."""
        tunable = [k for k in self.knobs.values() if len(k.choices) > 1]
        if not tunable:
            return dict(config)
        new = dict(config)
        for knob in rng.sample(tunable, min(changes, len(tunable))):
            at = knob.choices.index(new[knob.name])
            if rng.random() < 0.25:
                options = [c for c in knob.choices if c != new[knob.name]]
            else:
                options = [knob.choices[i] for i in (at - 1, at + 1)
                           if 0 <= i < len(knob.choices)]
            new[knob.name] = rng.choice(options)
        return new

    def to_json(self) -> dict:
        return {name: {"choices": list(k.choices), "default": k.default}
                for name, k in self.knobs.items()}


def options(default: int, candidates, limit: int | None = None) -> tuple:
    """Sorted integer choices for a knob: ``candidates`` up to ``limit`` (and at least 1),
    and the ``default`` itself."""
    values = {c for c in candidates if c >= 1 and (limit is None or c <= limit)}
    return tuple(sorted(values | {default}))


class DefaultConfig:
    """The untuned configuration: every knob takes its rule-based default; the knobs met
    are recorded in ``space``."""

    def __init__(self, target=None):
        self.target = target
        self.space = ConfigSpace()

    def knob(self, name: str, choices, default):
        knob = Knob(name, tuple(choices), default)
        self.space.add(knob)
        return default


class FixedConfig(DefaultConfig):
    """A chosen configuration: ``knob`` returns ``values[name]`` (checked against the
    choices); knobs it does not name take their default."""

    def __init__(self, values: dict, target=None):
        super().__init__(target)
        self.values = dict(values)

    def knob(self, name: str, choices, default):
        super().knob(name, choices, default)
        if name not in self.values:
            return default
        value = self.values[name]
        if value not in self.space.knobs[name].choices:
            raise ScheduleError(f"knob {name!r} = {value!r} is not one of {list(choices)}")
        return value

    def unused(self) -> list:
        """Knobs named by the configuration that the template never declared."""
        return sorted(set(self.values) - set(self.space.knobs))
