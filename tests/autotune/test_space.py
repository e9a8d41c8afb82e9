"""Configuration spaces: knobs declared by running a template, indexing, sampling."""

import random

import pytest

from dlc.autotune.space import ConfigSpace, DefaultConfig, FixedConfig, Knob
from dlc.errors import ScheduleError


def template(cfg):
    mr = cfg.knob("mr", (2, 4, 6, 8), default=6)
    order = cfg.knob("order", ("ijk", "ikj"), default="ikj")
    unroll = cfg.knob("unroll", (True, False), default=True)
    return mr, order, unroll


def test_default_config_records_space_and_returns_defaults():
    cfg = DefaultConfig()
    assert template(cfg) == (6, "ikj", True)
    assert list(cfg.space.knobs) == ["mr", "order", "unroll"]
    assert len(cfg.space) == 16
    assert cfg.space.default() == {"mr": 6, "order": "ikj", "unroll": True}


def test_fixed_config_returns_chosen_values_and_checks_them():
    assert template(FixedConfig({"mr": 2, "unroll": False})) == (2, "ikj", False)
    with pytest.raises(ScheduleError, match="'mr' = 5 is not one of"):
        template(FixedConfig({"mr": 5}))
    cfg = FixedConfig({"nr": 3})
    template(cfg)
    assert cfg.unused() == ["nr"]


def test_index_and_at_are_inverse_over_whole_space():
    cfg = DefaultConfig()
    template(cfg)
    space = cfg.space
    seen = {tuple(sorted(space.at(i).items())) for i in range(len(space))}
    assert len(seen) == len(space)
    for i in range(len(space)):
        assert space.index(space.at(i)) == i
    with pytest.raises(ScheduleError, match="outside a space of 16"):
        space.at(16)


def test_check_names_the_problem():
    space = ConfigSpace([Knob("a", (1, 2), 1)])
    assert space.check({"a": 2}) == {"a": 2}
    with pytest.raises(ScheduleError, match="no value for knob 'a'"):
        space.check({})
    with pytest.raises(ScheduleError, match="unknown knob"):
        space.check({"a": 1, "b": 0})
    with pytest.raises(ScheduleError, match="default 3 is not one of"):
        Knob("c", (1, 2), 3)
    with pytest.raises(ScheduleError, match="declared twice"):
        ConfigSpace([Knob("a", (1,), 1), Knob("a", (1,), 1)])


def test_sample_and_mutate_stay_in_space_and_follow_the_seed():
    cfg = DefaultConfig()
    template(cfg)
    space = cfg.space
    a = [space.sample(random.Random(7)) for _ in range(3)]
    b = [space.sample(random.Random(7)) for _ in range(3)]
    assert a == b
    rng = random.Random(1)
    config = space.default()
    for _ in range(50):
        new = space.mutate(config, rng)
        assert space.check(new) is new
        assert sum(new[k] != config[k] for k in config) == 1
        config = new
