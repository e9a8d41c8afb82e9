"""Searches over a task's configuration space: random (the baseline) and evolutionary,
guided by the learned cost model.

Both propose batches of new configurations and learn from their measurements::

    search = EvolutionarySearch(space, CostModel(), featurize, seed=0)
    while trials left:
        configs = search.propose(8, measured)      # never a key of ``measured``
        results = measure(configs)                 # MeasureResult, seconds or None each
        search.update(configs, results)
        measured |= {config_key(c) for c in configs}

``measured`` holds ``config_key(config)`` (``json.dumps(config, sort_keys=True)``) of every
configuration measured so far, by this search or in earlier runs. A proposal never
repeats one of them nor a configuration in the same batch; when the space has fewer
unmeasured configurations than asked for, fewer are returned (none when it is
exhausted). The space's default configuration comes first while it is unmeasured.
Proposals depend only on the seed and on the updates made: the same seed and the same
measurements give the same proposals.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np

from dlc.autotune.cost_model import CostModel, TrainingSet
from dlc.autotune.space import ConfigSpace
from dlc.errors import DlcError

#: Spaces up to this size are enumerated when random sampling stops finding unmeasured
#: configurations (a space nearly exhausted).
ENUMERATE_LIMIT = 1 << 17


def config_key(config: dict) -> str:
    """The key of a configuration in ``measured`` sets and tuning logs."""
    return json.dumps(config, sort_keys=True)


def result_seconds(result) -> float | None:
    """Seconds of one measurement: a MeasureResult (its median, None for an error other
    than stopped_early), a number, or None (failed)."""
    if result is None:
        return None
    if isinstance(result, (int, float)):
        return float(result) if result > 0 and math.isfinite(result) else None
    error = getattr(result, "error", None)
    if error is not None and error != "stopped_early":
        return None
    median = getattr(result, "median", None)
    if median is None:
        seconds = [t for t in getattr(result, "seconds", ()) or () if t > 0]
        median = float(np.median(seconds)) if seconds else None
    return median if median and median > 0 else None


class RandomSearch:
    """Uniform random configurations (the default first), never one measured."""

    def __init__(self, space: ConfigSpace, seed: int = 0):
        self.space = space
        self.rng = random.Random(seed)

    def propose(self, n: int, measured: set[str]) -> list[dict]:
        taken = set(measured)
        out = _default_first(self.space, taken, n)
        out += unmeasured_samples(self.space, self.rng, n - len(out), taken)
        return out

    def update(self, configs: list[dict], results: list) -> None:
        """Random search learns nothing."""


class EvolutionarySearch:
    """Configurations proposed by an evolutionary search over the cost model's scores.

    Each ``propose``: the population starts from the best measured configurations (up to
    half of it) and random samples; ``generations`` times, parents picked by tournament
    on the model's scores make children (uniform crossover, then a mutation through
    ``ConfigSpace.mutate``); the highest-scoring unmeasured configurations met (this round
    or earlier: their features are kept), one per feature vector not measured yet, are
    proposed, except an ``epsilon`` share of random ones that keeps exploring where the
    model knows nothing.

    ``featurize(config)`` returns the feature vector of a configuration (the tuner passes
    ``lambda c: extract(task.lower(c, target)[0])``); it costs a lowering, 10-50 ms, so at
    most ``max_featurize`` new configurations are featurized per round (256 by default:
    ~5 s, about the time of building a batch of 8-16 candidates). A configuration whose
    lowering raises a DlcError is never proposed by the model.

    ``update`` adds the measurements to ``training`` (a TrainingSet shared with other
    tasks' searches and seeded from earlier logs: rows of other tasks teach the model
    too) under ``group`` (this task's key) and retrains the model. While the model is
    untrained (too few measurements) proposals are random samples and mutations of the
    best measured configurations, half each.
    """

    def __init__(self, space: ConfigSpace, cost_model: CostModel, featurize, seed: int = 0,
                 *, population: int = 64, generations: int = 4, epsilon: float = 0.2,
                 max_featurize: int = 256, training: TrainingSet | None = None,
                 group: str = "task"):
        self.space = space
        self.model = cost_model
        self.featurize = featurize
        self.rng = random.Random(seed)
        self.population = max(2, population)
        self.generations = generations
        self.epsilon = epsilon
        self.max_featurize = max_featurize
        self.training = training if training is not None else TrainingSet()
        self.group = group
        self.configs: dict[str, dict] = {}  # key -> configuration, every one met
        self.features: dict[str, np.ndarray | None] = {}  # key -> vector (None: invalid)
        self.throughput: dict[str, float] = {}  # measured here: key -> 1/seconds (0: failed)
        self.featurized = 0  # featurize calls made, all rounds
        if len(self.training):
            self.model.fit(*self.training.arrays())

    # -- proposals --------------------------------------------------------------------
    def propose(self, n: int, measured: set[str]) -> list[dict]:
        taken = set(measured)
        out = _default_first(self.space, taken, n)
        left = n - len(out)
        if left <= 0:
            return out
        if self.model.trained:
            explore = min(left, int(round(self.epsilon * left)))
            out += self._best_predicted(left - explore, taken)
            out += unmeasured_samples(self.space, self.rng, explore, taken)
        out += self._untrained_proposals(n - len(out), taken)  # the model found too few
        return out

    def _best_predicted(self, n: int, taken: set) -> list[dict]:
        """The ``n`` best-scored unmeasured configurations, one per distinct feature
        vector (configurations with the features of one measured or picked are most
        often the same loop nest: a knob without effect there)."""
        if n <= 0:
            return []
        scored = self._evolve(taken)
        seen = {self.features[key].tobytes() for key in taken
                if self.features.get(key) is not None}
        out = []
        for _, _, config in scored:
            if len(out) == n:
                break
            key = config_key(config)
            fingerprint = self.features[key].tobytes()
            if fingerprint in seen:
                continue
            seen.add(fingerprint)
            out.append(config)
            taken.add(key)
        return out

    def _untrained_proposals(self, n: int, taken: set) -> list[dict]:
        """Random samples and mutations of the best measured configurations."""
        out = []
        parents = self._best_measured(8)
        attempts = 0
        while parents and len(out) < n // 2 and attempts < 16 * n:
            attempts += 1
            child = self.space.mutate(self.rng.choice(parents), self.rng,
                                      changes=self.rng.choice((1, 1, 2)))
            key = config_key(child)
            if key not in taken and self.features.get(key, 0) is not None:
                taken.add(key)
                out.append(child)
        out += unmeasured_samples(self.space, self.rng, n - len(out), taken)
        return out

    def _best_measured(self, k: int) -> list[dict]:
        ranked = sorted(((-t, key) for key, t in self.throughput.items() if t > 0))
        return [self.configs[key] for _, key in ranked[:k]]

    def _evolve(self, taken: set) -> list[tuple[float, int, dict]]:
        """Unmeasured valid configurations met so far with their scores, best first."""
        budget = [self.max_featurize]
        pool: dict[str, dict] = {}  # candidates whose features are known, valid or not

        def add(configs):
            for config in configs:
                key = config_key(config)
                if key in pool:
                    continue
                if key not in self.features:
                    if budget[0] <= 0:
                        continue
                    budget[0] -= 1
                    self._features_of(config)
                if self.features[key] is not None:
                    pool[key] = config

        # candidates featurized in earlier rounds are rescored for free
        add(self.configs[key] for key, x in self.features.items()
            if x is not None and key not in taken)
        elite = self._best_measured(self.population // 2)
        add(elite)
        add(self.space.sample(self.rng) for _ in range(self.population - len(elite)))
        for _ in range(self.generations):
            population = self._rank(pool)[:self.population]
            if len(population) < 2 or budget[0] <= 0:
                break
            add(self._children(population))
        return [entry for entry in self._rank(pool) if config_key(entry[2]) not in taken]

    def _rank(self, pool: dict) -> list[tuple[float, int, dict]]:
        keys = list(pool)
        scores = self.model.predict(np.array([self.features[k] for k in keys]))
        order = sorted(range(len(keys)), key=lambda i: (-scores[i], i))
        return [(float(scores[i]), i, pool[keys[i]]) for i in order]

    def _children(self, population: list) -> list[dict]:
        """As many children as the population: tournament parents, uniform crossover,
        one mutation."""

        def pick():
            a, b = self.rng.randrange(len(population)), self.rng.randrange(len(population))
            return population[min(a, b)][2]  # population is sorted, best first

        children = []
        for _ in range(len(population)):
            mother, father = pick(), pick()
            child = {name: (mother if self.rng.random() < 0.5 else father)[name]
                     for name in self.space.knobs}
            children.append(self.space.mutate(child, self.rng))
        return children

    def _features_of(self, config: dict) -> np.ndarray | None:
        key = config_key(config)
        self.configs.setdefault(key, config)
        if key not in self.features:
            self.featurized += 1
            try:
                self.features[key] = np.asarray(self.featurize(config), dtype=np.float64)
            except DlcError:
                self.features[key] = None
        return self.features[key]

    # -- learning ---------------------------------------------------------------------
    def update(self, configs: list[dict], results: list) -> None:
        """Record measurements (MeasureResult, seconds or None per configuration) and
        retrain the cost model on all of the training set."""
        for config, result in zip(configs, results):
            seconds = result_seconds(result)
            throughput = 1.0 / seconds if seconds else 0.0
            key = config_key(config)
            self.configs.setdefault(key, config)
            self.throughput[key] = throughput
            x = self._features_of(config)
            if x is not None:
                self.training.add(self.group, x, throughput)
        self.model.fit(*self.training.arrays())


def unmeasured_samples(space: ConfigSpace, rng: random.Random, n: int,
                       taken: set) -> list[dict]:
    """Up to ``n`` random configurations whose keys are not in ``taken`` (which grows);
    fewer only when the space has no more."""
    out: list[dict] = []
    attempts = 0
    while len(out) < n and attempts < 32 * n + 32:
        attempts += 1
        config = space.sample(rng)
        key = config_key(config)
        if key not in taken:
            taken.add(key)
            out.append(config)
    if len(out) < n and len(space) <= ENUMERATE_LIMIT:
        rest = [i for i in range(len(space)) if config_key(space.at(i)) not in taken]
        for i in rng.sample(rest, min(n - len(out), len(rest))):
            config = space.at(i)
            taken.add(config_key(config))
            out.append(config)
    return out


def _default_first(space: ConfigSpace, taken: set, n: int) -> list[dict]:
    default = space.default()
    key = config_key(default)
    if n <= 0 or key in taken:
        return []
    taken.add(key)
    return [default]
