"""Random and model-guided searches: no repeats, exhaustion, determinism, and the model
finding a synthetic optimum in fewer trials than random sampling."""

import math
from dataclasses import dataclass, field

import numpy as np
import pytest

from dlc.autotune.cost_model import CostModel, TrainingSet
from dlc.autotune.search import (
    EvolutionarySearch,
    RandomSearch,
    config_key,
    result_seconds,
)
from dlc.autotune.space import ConfigSpace, Knob
from dlc.errors import ScheduleError


def space():
    """3840 configurations; the default (all first choices) is far from the optimum."""
    return ConfigSpace([Knob("a", tuple(range(8)), 0), Knob("b", tuple(range(8)), 0),
                        Knob("c", tuple(range(6)), 0), Knob("d", (1, 2, 4, 8, 16), 1),
                        Knob("e", (False, True), False)])


def seconds(c):
    """A smooth bowl with an interaction; 1 ms at a=5, b=2, c=3, d=8, e=True only."""
    v = ((c["a"] - 5) ** 2 + 0.5 * (c["b"] - 2) ** 2 + 0.7 * (c["c"] - 3) ** 2
         + (math.log2(c["d"]) - 3) ** 2 + 2 * (not c["e"]) + 0.3 * abs(c["a"] - c["b"] - 3))
    return 1e-3 * (1 + v)


def featurize(c):
    return [c["a"], c["b"], c["c"], math.log2(c["d"]), float(c["e"])]


def guided(seed=0, **kw):
    kw.setdefault("cost_model", CostModel(seed=seed))
    kw.setdefault("featurize", featurize)
    return EvolutionarySearch(kw.pop("space", None) or space(), seed=seed, **kw)


def run(search, trials, batch=8, measured=None, objective=seconds, until=None):
    """Tune like the tuner does (stopping after a proposal ``until`` accepts); returns
    every proposal in order."""
    measured = set(measured or ())
    proposed = []
    for _ in range(10 * trials):  # a search that stops proposing ends the loop early
        if len(proposed) >= trials or (until and any(until(c) for c in proposed[-batch:])):
            break
        configs = search.propose(min(batch, trials - len(proposed)), measured)
        if not configs:
            break
        search.update(configs, [objective(c) for c in configs])
        measured |= {config_key(c) for c in configs}
        proposed += configs
    return proposed


def optimum(config):
    return seconds(config) == pytest.approx(1e-3)


def trials_to_optimum(search, limit=400):
    for n, config in enumerate(run(search, limit, until=optimum), 1):
        if seconds(config) == pytest.approx(1e-3):
            return n
    return limit + 1


@pytest.mark.parametrize("make", [lambda s: RandomSearch(space(), s), guided],
                         ids=["random", "guided"])
def test_never_repeats_and_default_first(make):
    sp = space()
    already = {config_key(sp.at(i)) for i in range(1, len(sp), 7)}  # not the default
    proposed = run(make(1), 120, measured=already)
    keys = [config_key(c) for c in proposed]
    assert len(keys) == 120 == len(set(keys))
    assert not set(keys) & already
    assert proposed[0] == sp.default()
    for c in proposed:
        sp.check(c)
    # the default is not proposed again once measured
    assert make(1).propose(4, {config_key(sp.default())})[0] != sp.default()


def tiny_features(c):
    return [c["a"], float(c["b"]), c["c"]]


@pytest.mark.parametrize("make", [
    lambda s, sp: RandomSearch(sp, s),
    lambda s, sp: guided(s, space=sp, featurize=tiny_features),
    lambda s, sp: guided(s, space=sp, featurize=tiny_features, population=4,
                         cost_model=CostModel(min_samples=2)),
], ids=["random", "guided", "guided-trained"])
def test_exhausts_a_tiny_space(make):
    sp = ConfigSpace([Knob("a", (1, 2, 3), 1), Knob("b", (True, False), True),
                      Knob("c", (7,), 7)])
    proposed = run(make(3, sp), 100, batch=4,
                   objective=lambda c: 1e-3 * c["a"] * (1 + c["b"]))
    assert sorted(config_key(c) for c in proposed) == \
        sorted(config_key(sp.at(i)) for i in range(len(sp)))
    assert make(3, sp).propose(5, {config_key(c) for c in proposed}) == []


@pytest.mark.parametrize("make", [lambda s: RandomSearch(space(), s), guided],
                         ids=["random", "guided"])
def test_same_seed_same_proposals(make):
    first, again, other = run(make(5), 64), run(make(5), 64), run(make(6), 64)
    assert first == again
    assert first != other


def test_guided_finds_optimum_in_fewer_trials_than_random():
    seeds = range(4)
    random_trials = [trials_to_optimum(RandomSearch(space(), s)) for s in seeds]
    guided_trials = [trials_to_optimum(guided(s)) for s in seeds]
    # random sampling needs ~len(space) / 2 = 1920 trials on average
    assert np.mean(guided_trials) < 150 < np.mean(random_trials), (guided_trials,
                                                                   random_trials)


def test_prior_measurements_of_other_tasks_guide_the_first_round():
    """A model trained on another task (throughput in other units, same landscape) ranks
    the first proposals of a new task: better than random ones, before any measurement."""
    rng = np.random.default_rng(0)
    sp = space()
    prior = TrainingSet()
    for i in rng.choice(len(sp), 300, replace=False):
        config = sp.at(int(i))
        prior.add("other task", featurize(config), 123.0 / seconds(config))
    search = guided(0, training=prior, epsilon=0.0, group="new task")
    assert search.model.trained
    first = search.propose(17, set())[1:]  # after the default
    randoms = RandomSearch(sp, 0).propose(17, set())[1:]
    assert np.mean([seconds(c) for c in first]) < 0.5 * np.mean([seconds(c) for c in randoms])


def test_featurize_calls_are_capped_and_invalid_configs_skipped():
    calls = []

    def counting(c):
        calls.append(c)
        if c["a"] == 5:
            raise ScheduleError("a = 5 does not lower")
        return featurize(c)

    search = EvolutionarySearch(space(), CostModel(), counting, seed=0, max_featurize=20,
                                epsilon=0.0)
    measured = set()
    for _ in range(6):
        configs = search.propose(8, measured)
        before = len(calls)
        search.update(configs, [seconds(c) for c in configs])
        measured |= {config_key(c) for c in configs}
        assert len(calls) - before <= 8  # update featurizes the measured ones at most
        if search.model.trained:
            before = len(calls)
            configs = search.propose(8, measured)
            assert len(calls) - before <= 20
            assert all(c["a"] != 5 for c in configs)
            search.update(configs, [seconds(c) for c in configs])
            measured |= {config_key(c) for c in configs}
    assert search.model.trained


@dataclass
class FakeResult:
    seconds: list = field(default_factory=list)
    error: str | None = None

    @property
    def median(self):
        return float(np.median(self.seconds)) if self.seconds and not self.error else None


def test_result_seconds():
    assert result_seconds(FakeResult([1.0, 3.0, 2.0])) == 2.0
    assert result_seconds(FakeResult([], "timeout")) is None
    assert result_seconds(FakeResult([5.0], "stopped_early")) == 5.0
    assert result_seconds(2e-3) == 2e-3
    assert result_seconds(None) is None and result_seconds(float("inf")) is None
    search = guided(0)
    search.update([space().default()], [FakeResult([], "runtime_crash")])
    assert search.throughput[config_key(space().default())] == 0.0


def test_model_proposes_one_configuration_per_feature_vector():
    """Knob e changes nothing the features see (as a knob without effect in some loop
    nest): the model's picks never repeat the features of a measured or picked one."""
    search = guided(0, featurize=lambda c: featurize(c)[:4], epsilon=0.0)
    measured = {config_key(c) for c in run(search, 32)}
    assert search.model.trained
    batch = search.propose(8, measured)
    fingerprints = [tuple(featurize(c)[:4]) for c in batch]
    assert len(batch) == 8 and len(set(fingerprints)) == 8
    assert not set(fingerprints) & {tuple(search.features[k]) for k in measured}
