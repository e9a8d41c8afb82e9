"""A learned cost model: gradient-boosted trees (LightGBM) that rank candidates of a task.

Training data are ``(features, throughput, group)`` rows: the features of a candidate's
loop IR (``dlc.autotune.features``), its measured throughput (FLOP/s, or 1/seconds where
the work is unknown: only ratios within a task matter) and its task. Throughputs are
normalized per task by that task's best, so tasks of any size mix in one model; a
candidate that failed (build error, crash, timeout, wrong result) has throughput 0 and
ranks last in its task. The model learns ``1 + log(throughput / best) / log(LOG_RANGE)``
(clipped to [0, 1]: everything slower than best / LOG_RANGE, failures included, is 0), by
regression (the default) or, with ``objective="rank"``, as relevance grades of LightGBM's
``lambdarank`` objective per task group. Measured on the GEMM tasks of
``benchmarks/tune_search.py`` (a model trained on the guided search's measurements and
the earlier tasks', scored on the random search's, which it never saw; 4 task splits),
the mean pairwise ranking accuracy was: regression on the log target 0.78, on the linear
ratio 0.74; lambdarank on log grades 0.70, on linear grades 0.66.

With too little data (fewer than ``min_samples`` rows, or no task with two different
throughputs) there is nothing to learn: ``fit`` leaves the model untrained and
``predict`` returns None, and the searches fall back to random sampling and mutation of
the best measured configurations. Nothing is made up.

Training is deterministic for a seed (``deterministic=True``, row-wise histograms, the
given thread count). ``lightgbm`` is imported when a model is trained.
"""

from __future__ import annotations

import statistics

import numpy as np

from dlc.autotune.features import FEATURE_VERSION, N_FEATURES
from dlc.errors import ArgumentError

#: Throughputs below best / LOG_RANGE are all as bad as a failure.
LOG_RANGE = 100.0
#: Relevance grades of the ranking objective (LightGBM's default label_gain has 31).
GRADES = 31
#: Larger groups are dealt into interleaved groups of at most this many rows.
MAX_GROUP = 256
#: Error classes that still give a time: the run was slow, not broken.
TIMED_ERRORS = ("stopped_early",)


class CostModel:
    """Scores candidates: higher means faster within a task (scores of different tasks
    are not comparable)."""

    def __init__(self, objective: str = "regression", seed: int = 0, num_threads: int = 1,
                 rounds: int = 100, min_samples: int = 16):
        if objective not in ("rank", "regression"):
            raise ArgumentError(f"cost model objective {objective!r} is not 'rank' or "
                                "'regression'")
        self.objective = objective
        self.seed = seed
        self.num_threads = num_threads
        self.rounds = rounds
        self.min_samples = min_samples
        self.booster = None

    @property
    def trained(self) -> bool:
        return self.booster is not None

    def fit(self, X, y, groups) -> bool:
        """Train on rows ``X`` with throughputs ``y`` (0 for failures) of tasks
        ``groups`` (one label per row); returns whether a model was trained (else the
        model is untrained, whatever it was before)."""
        import lightgbm

        X, rel, order, sizes = _prepare(X, y, groups)
        self.booster = None
        if len(order) < self.min_samples or not sizes:
            return False
        X, rel = X[order], rel[order]
        params = {
            "learning_rate": 0.1, "num_leaves": 31,
            "min_data_in_leaf": max(2, min(20, len(rel) // 16)),
            "min_sum_hessian_in_leaf": 1e-6, "feature_fraction": 0.8,
            "lambda_l2": 1.0, "deterministic": True, "force_row_wise": True,
            "num_threads": self.num_threads, "seed": self.seed, "verbose": -1,
        }
        if self.objective == "rank":
            params.update(objective="lambdarank", lambdarank_truncation_level=max(sizes),
                          label_gain=[float(g) for g in range(GRADES)])
            labels = np.rint(rel * (GRADES - 1)).astype(np.int32)
            data = lightgbm.Dataset(X, labels, group=sizes, params={"verbose": -1})
        else:
            params.update(objective="regression")
            data = lightgbm.Dataset(X, rel, params={"verbose": -1})
        self.booster = lightgbm.train(params, data, num_boost_round=self.rounds)
        return True

    def predict(self, X) -> np.ndarray | None:
        """Scores of rows ``X`` (higher: faster), or None when the model is untrained."""
        if self.booster is None:
            return None
        X = np.asarray(X, dtype=np.float64)
        if not len(X):
            return np.zeros(0)
        return self.booster.predict(X.reshape(len(X), -1), num_threads=self.num_threads)

    def pairwise_accuracy(self, X, y, groups) -> float | None:
        """Fraction of pairs of one task with different throughputs that the model
        orders right (None when untrained or there is no such pair)."""
        scores = self.predict(X)
        return None if scores is None else pairwise_accuracy(scores, y, groups)


def pairwise_accuracy(scores, y, groups) -> float | None:
    """Fraction of same-group pairs with different ``y`` ordered alike by ``scores``
    (ties in ``scores`` count half); None when there is no such pair."""
    scores, y = np.asarray(scores, dtype=np.float64), np.asarray(y, dtype=np.float64)
    groups = np.asarray(groups)
    right = total = 0.0
    for g in _unique(groups):
        idx = np.flatnonzero(groups == g)
        dy = np.sign(y[idx][:, None] - y[idx][None, :])
        ds = np.sign(scores[idx][:, None] - scores[idx][None, :])
        mask = dy > 0
        total += mask.sum()
        right += (ds[mask] > 0).sum() + 0.5 * (ds[mask] == 0).sum()
    return None if total == 0 else float(right / total)


class TrainingSet:
    """Rows for the cost model, grouped by task; shared by the searches of a tuning run
    (and seeded from earlier logs) so every task's model learns from all of them."""

    def __init__(self):
        self.features: list[np.ndarray] = []
        self.throughputs: list[float] = []
        self.groups: list[str] = []

    def __len__(self) -> int:
        return len(self.features)

    def add(self, group: str, features, throughput: float) -> None:
        x = np.asarray(features, dtype=np.float64)
        want = (self.features[0].shape if self.features else (x.size,))
        if x.ndim != 1 or x.shape != want:
            raise ArgumentError(f"a feature vector has shape {x.shape}, the training set's "
                                f"have {want}")
        self.features.append(x)
        self.throughputs.append(max(0.0, float(throughput)))
        self.groups.append(str(group))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, groups)`` for ``CostModel.fit``."""
        width = len(self.features[0]) if self.features else N_FEATURES
        X = np.array(self.features).reshape(-1, width)
        return X, np.array(self.throughputs, dtype=np.float64), np.array(self.groups)

    @classmethod
    def from_records(cls, records, target=None) -> TrainingSet:
        """Rows of tuning-log records (schema 2) that carry features of this
        FEATURE_VERSION, for ``target`` (a dlc Target or a record's target dict: same
        kind and CPU) when given; other records are left out."""
        data = cls()
        want = _target_id(target) if target is not None else None
        for record in records:
            feats = record.get("features") or {}
            if feats.get("version") != FEATURE_VERSION or \
                    len(feats.get("values") or ()) != N_FEATURES:
                continue
            if want is not None and _target_id(record.get("target")) != want:
                continue
            data.add(record["task"], feats["values"], record_throughput(record))
        return data


def record_throughput(record: dict) -> float:
    """FLOP/s of a record (1/seconds without ``flops``), 0 for a failed candidate."""
    error = record.get("error")
    if error and (error.get("class") if isinstance(error, dict) else error) \
            not in TIMED_ERRORS:
        return 0.0
    seconds = [t for t in record.get("seconds") or () if t and t > 0]
    if not seconds:
        return 0.0
    return (record.get("flops") or 1.0) / statistics.median(seconds)


def _target_id(target) -> tuple:
    if target is None:
        return (None, None)
    if isinstance(target, dict):
        return (target.get("kind"), target.get("cpu"))
    return (target.kind, target.mcpu if target.kind == "llvm" else None)


def _unique(values) -> list:
    seen: dict = {}
    for v in values.tolist():
        seen.setdefault(v, None)
    return list(seen)


def _prepare(X, y, groups):
    """Features, per-group targets (log of the throughput over the group's best), the row
    order that makes groups contiguous (groups with nothing to rank left out) and the group
    sizes."""
    X = np.asarray(X, dtype=np.float64)
    X = X.reshape(len(X), -1) if len(X) else X.reshape(0, 0)  # nothing learnable yet
    y = np.maximum(np.asarray(y, dtype=np.float64), 0.0)
    groups = np.asarray(groups)
    if not len(X) == len(y) == len(groups):
        raise ArgumentError(f"cost model data: {len(X)} rows, {len(y)} throughputs and "
                            f"{len(groups)} groups")
    rel = np.zeros_like(y)
    order, sizes = [], []
    for g in _unique(groups):
        idx = np.flatnonzero(groups == g)
        best = y[idx].max()
        if best <= 0:
            continue
        ratio = y[idx] / best
        rel[idx] = np.clip(1.0 + np.log(np.maximum(ratio, 1e-300)) / np.log(LOG_RANGE), 0, 1)
        if len(idx) < 2 or np.ptp(rel[idx]) == 0:
            continue
        chunks = -(-len(idx) // MAX_GROUP)  # lambdarank costs the square of a group
        for k in range(chunks):
            order.extend(idx[k::chunks].tolist())
            sizes.append(len(idx[k::chunks]))
    return X, rel, np.array(order, dtype=np.int64), sizes
