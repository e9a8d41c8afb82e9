"""Classical machine-learning operators (ONNX's ai.onnx.ml domain, numeric tensors only):
Binarizer, ArrayFeatureExtractor, LabelEncoder, TreeEnsemble.

Attribute arrays (keys, values, leaf weights) become *constant tables*: stages computed
once per run by a balanced tree of selects over the element index (``constant_table``).
Decision trees are compiled to nested branches: one stage finds, for every sample and
tree, the leaf the sample reaches; the aggregation reduces over trees.
"""

from __future__ import annotations

import numpy as np

from dlc import te
from dlc.errors import UnsupportedOpError
from dlc.ops.common import np_dtype, out_type, sum_dtype
from dlc.ops.registry import (
    ELEMWISE,
    INJECTIVE,
    OPAQUE,
    REQUIRED,
    OpDef,
    check_dtype,
    register,
)
from dlc.ops.shape import clamp_index, unravel

_INT_OF = {1: "int8", 2: "int16", 4: "int32", 8: "int64"}


class ConstantTable:
    """A tensor of constant values readable at run-time indices: ``table[i, j]``.

    The values are stored as integers (floats by their bits, so that -0.0 and NaN
    survive) in a stage computed once by a balanced tree of selects over the flat index
    (a one-element reduction, so the default schedule never inlines it)."""

    def __init__(self, values, name: str):
        values = np.ascontiguousarray(values)
        self.dtype = str(values.dtype) if values.dtype != np.bool_ else "bool"
        self.shape = values.shape
        bits = values.astype(np.int8) if values.dtype == np.bool_ else \
            values.view(np.dtype(_INT_OF[values.dtype.itemsize]))
        self.store = _INT_OF[bits.dtype.itemsize] if values.dtype.kind == "f" else \
            str(bits.dtype)
        flat = bits.reshape(-1).tolist()

        def tree(index, lo, hi):
            if hi - lo == 1:
                return te.const(flat[lo], self.store)
            mid = (lo + hi) // 2
            return te.if_then_else(index < mid, tree(index, lo, mid), tree(index, mid, hi))

        def body(*idx):
            flat_index = te.const(0, "int64")
            for i, d in zip(idx, self.shape):
                flat_index = flat_index * d + i
            once = te.reduce_axis(1, "once")
            return te.sum(tree(flat_index, 0, len(flat)), axis=once)

        self.stage = te.compute(self.shape, body, name=name)

    def __getitem__(self, idx):
        value = self.stage[idx if isinstance(idx, tuple) else (idx,)]
        if self.dtype == "bool":
            return value != 0
        if self.dtype != self.store:
            return te.reinterpret(value, self.dtype)
        return value


# -- Binarizer --------------------------------------------------------------------------
@register
class Binarizer(OpDef):
    """1 where ``X > threshold``, 0 elsewhere (NaN gives 0), in X's dtype."""

    name = "Binarizer"
    pattern = ELEMWISE
    attrs = {"threshold": 0.0}

    def infer(self, ctx):
        check_dtype(ctx, 0, ("float32", "float64", "int32", "int64"))
        return [ctx.type(0)]

    def reference(self, ctx, x):
        work = np.float32 if x.dtype == np.float32 else np.float64
        threshold = work(ctx.attrs["threshold"])
        return [(x.astype(work) > threshold).astype(x.dtype)]

    def compute(self, ctx, x):
        work = "float32" if x.dtype == "float32" else "float64"  # as NumPy compares
        threshold = te.const(float(ctx.attrs["threshold"]), work)
        one, zero = te.const(1, x.dtype), te.const(0, x.dtype)
        return [te.compute(x.shape, lambda *i: te.if_then_else(
            te.cast(x[i], work) > threshold, one, zero), name=ctx.name or self.name)]


# -- ArrayFeatureExtractor --------------------------------------------------------------
@register
class ArrayFeatureExtractor(OpDef):
    """Elements of X's last axis at the (flattened) indices Y: ``X[..., Y.ravel()]``. A
    1-D X gives one row ``[1, len(Y)]``. Negative indices count from the end; others out
    of range are an error (clamped in compiled code)."""

    name = "ArrayFeatureExtractor"
    pattern = INJECTIVE
    num_inputs = (2, 2)

    def infer(self, ctx):
        check_dtype(ctx, 0, ("float32", "float64", "int32", "int64"))
        check_dtype(ctx, 1, ("int64",))
        x, count = ctx.type(0), ctx.type(1).size
        if x.ndim == 0:
            raise ctx.error("X must have rank 1 or more")
        lead = x.shape[:-1] if x.ndim > 1 else (1,)
        return [out_type(lead + (count,), x.dtype)]

    def reference(self, ctx, x, indices):
        size = x.shape[-1]
        idx = indices.reshape(-1)
        if idx.size and (idx.min() < -size or idx.max() >= size):
            raise ctx.error(f"an index is out of range [-{size}, {size - 1}]")
        return [x[..., idx].reshape(ctx.out_types[0].shape)]

    def compute(self, ctx, x, indices):
        size, shape = x.shape[-1], ctx.out_types[0].shape

        def body(*i):
            k = clamp_index(indices[tuple(unravel(i[-1], indices.shape))], size)
            lead = i[:-1] if len(x.shape) > 1 else ()
            return x[(*lead, k)]

        return [te.compute(shape, body, name=ctx.name or self.name)]


# -- LabelEncoder -----------------------------------------------------------------------
_LABEL_DTYPES = ("int16", "int32", "int64", "float16", "float32", "float64")


@register
class LabelEncoder(OpDef):
    """Maps each element of X to the value of the matching key (the last one if a key
    repeats; NaN keys match NaN), or to the default. Keys and values come from
    ``keys_tensor`` / ``keys_int64s`` / ``keys_floats`` and the ``values_*`` attributes
    (one of each); string keys or values are not supported."""

    name = "LabelEncoder"
    pattern = OPAQUE
    attrs = {"keys_tensor": None, "keys_int64s": None, "keys_floats": None,
             "values_tensor": None, "values_int64s": None, "values_floats": None,
             "default_tensor": None, "default_int64": -1, "default_float": -0.0}

    def _mapping(self, ctx):
        a = ctx.attrs
        keys = [np.asarray(v, dt) for v, dt in ((a["keys_tensor"], None),
                                                 (a["keys_int64s"], np.int64),
                                                 (a["keys_floats"], np.float32))
                if v is not None]
        values = [(np.asarray(v, dt), kind) for v, dt, kind in (
            (a["values_tensor"], None, "tensor"), (a["values_int64s"], np.int64, "int"),
            (a["values_floats"], np.float32, "float")) if v is not None]
        if len(keys) != 1 or len(values) != 1:
            raise ctx.error("exactly one keys_* and one values_* attribute must be given")
        (keys,), ((values, kind),) = keys, values
        keys, values = keys.reshape(-1), values.reshape(-1)
        if keys.size != values.size:
            raise ctx.error(f"{keys.size} keys but {values.size} values")
        if str(values.dtype) not in _LABEL_DTYPES or str(keys.dtype) not in _LABEL_DTYPES:
            raise ctx.error(f"keys of dtype {keys.dtype} and values of dtype {values.dtype} "
                            f"are not supported; supported: {', '.join(_LABEL_DTYPES)}")
        if a["default_tensor"] is not None:
            default = np.asarray(a["default_tensor"]).reshape(-1)
            if default.size != 1:
                raise ctx.error("default_tensor must hold one value")
            default = default.astype(values.dtype)[0]
        else:
            default = np.array(a["default_float" if values.dtype.kind == "f" and
                                 kind != "int" else "default_int64"]).astype(values.dtype)
        return keys, values, default

    def infer(self, ctx):
        keys, values, _ = self._mapping(ctx)
        dtype = check_dtype(ctx, 0, _LABEL_DTYPES)
        if str(keys.dtype) != dtype:
            raise ctx.error(f"X has dtype {dtype} but the keys have dtype {keys.dtype}")
        return [out_type(ctx.type(0).shape, str(values.dtype))]

    def reference(self, ctx, x):
        keys, values, default = self._mapping(ctx)
        out = np.full(x.shape, default, values.dtype)
        for key, value in zip(keys, values):  # later keys take precedence
            match = (x == key) | (np.isnan(x) & np.isnan(key)) if x.dtype.kind == "f" \
                else x == key
            out[match] = value
        return [out]

    def compute(self, ctx, x):
        keys, values, default = self._mapping(ctx)
        name = ctx.name or self.name
        shape, dtype = ctx.out_types[0].shape, str(values.dtype)
        if keys.size == 0:
            return [te.compute(shape, lambda *i: te.const(default.item(), dtype), name=name)]
        key_t = ConstantTable(keys, name + "_keys")
        value_t = ConstantTable(values, name + "_values")
        k = te.reduce_axis(keys.size, "k")

        def matches(v, key):
            if keys.dtype.kind != "f":
                return v == key
            return (v == key) | (te.isnan(v) & te.isnan(key))

        last = te.compute(shape, lambda *i: te.max(k, axis=k, where=matches(x[i], key_t[k])),
                          name=name + "_match")
        return [te.compute(shape, lambda *i: te.if_then_else(
            last[i] >= 0, value_t[te.maximum(last[i], 0)], te.const(default.item(), dtype)),
            name=name)]


# -- TreeEnsemble -----------------------------------------------------------------------
_LEQ, _LT, _GTE, _GT, _EQ, _NEQ, _MEMBER = range(7)
_AGGREGATES = {0: "AVERAGE", 1: "SUM", 2: "MIN", 3: "MAX"}
_TRANSFORMS = {0: "NONE", 1: "SOFTMAX", 2: "LOGISTIC", 3: "SOFTMAX_ZERO", 4: "PROBIT"}


class _Forest:
    """The parsed attributes of a TreeEnsemble node."""

    def __init__(self, ctx, dtype: str):
        a = ctx.attrs
        self.modes = np.asarray(a["nodes_modes"]).reshape(-1).astype(np.int64)
        count = self.modes.size
        self.features = list(a["nodes_featureids"])
        splits = np.asarray(a["nodes_splits"])
        self.splits = splits.reshape(-1).astype(np.float64)
        #: comparisons are exact in the wider of X's and the splits' dtypes
        self.work = "float64" if "float64" in (dtype, str(splits.dtype)) else "float32"
        self.true_ids, self.false_ids = list(a["nodes_truenodeids"]), \
            list(a["nodes_falsenodeids"])
        self.true_leaf, self.false_leaf = list(a["nodes_trueleafs"]), \
            list(a["nodes_falseleafs"])
        tracks = a["nodes_missing_value_tracks_true"]
        self.tracks = list(tracks) if tracks else [0] * count
        for what, v in (("nodes_featureids", self.features), ("nodes_splits", self.splits),
                        ("nodes_truenodeids", self.true_ids),
                        ("nodes_falsenodeids", self.false_ids),
                        ("nodes_trueleafs", self.true_leaf),
                        ("nodes_falseleafs", self.false_leaf),
                        ("nodes_missing_value_tracks_true", self.tracks)):
            if len(v) != count:
                raise ctx.error(f"{what} has {len(v)} entries, nodes_modes has {count}")
        if any(m not in range(7) for m in self.modes.tolist()):
            raise ctx.error(f"nodes_modes must be in 0..6, got {self.modes.tolist()}")
        self.weights = np.asarray(a["leaf_weights"]).reshape(-1).astype(np.float64)
        self.targets = list(a["leaf_targetids"])
        if len(self.targets) != self.weights.size:
            raise ctx.error("leaf_weights and leaf_targetids differ in length")
        self.n_targets = int(a["n_targets"]) if a["n_targets"] is not None else \
            max(self.targets, default=-1) + 1
        if any(not 0 <= t < self.n_targets for t in self.targets):
            raise ctx.error(f"leaf_targetids must be in [0, {self.n_targets})")
        self.roots = list(a["tree_roots"])
        if not self.roots:
            raise ctx.error("tree_roots is empty")
        self.members = self._members(ctx, a["membership_values"])
        self.aggregate = _AGGREGATES.get(a["aggregate_function"])
        self.transform = _TRANSFORMS.get(a["post_transform"])
        if self.aggregate is None or self.transform is None:
            raise ctx.error(f"aggregate_function must be in 0..3 and post_transform in 0..4, "
                            f"got {a['aggregate_function']} and {a['post_transform']}")
        if self.transform == "PROBIT":
            raise UnsupportedOpError(f"TreeEnsemble node {ctx.name!r}: post_transform PROBIT "
                                     "is not supported")
        self._check_refs(ctx, count)

    def _members(self, ctx, values) -> dict:
        """node index -> the set of values of each BRANCH_MEMBER node, in node order."""
        member_nodes = [k for k, m in enumerate(self.modes.tolist()) if m == _MEMBER]
        if not member_nodes:
            return {}
        if values is None:
            raise ctx.error("BRANCH_MEMBER nodes need membership_values")
        groups, current = [], []
        for v in np.asarray(values, np.float64).reshape(-1).tolist():
            if np.isnan(v):
                groups.append(current)
                current = []
            else:
                current.append(v)
        if current:
            groups.append(current)
        if len(groups) != len(member_nodes):
            raise ctx.error(f"membership_values has {len(groups)} sets for "
                            f"{len(member_nodes)} BRANCH_MEMBER nodes")
        return dict(zip(member_nodes, groups))

    def _check_refs(self, ctx, count: int) -> None:
        leaves = self.weights.size
        for k in range(count):
            for ids, leaf in ((self.true_ids, self.true_leaf), (self.false_ids,
                                                               self.false_leaf)):
                if not 0 <= ids[k] < (leaves if leaf[k] else count):
                    raise ctx.error(f"node {k} refers to a missing "
                                    f"{'leaf' if leaf[k] else 'node'} {ids[k]}")
        if any(not 0 <= r < count for r in self.roots):
            raise ctx.error("tree_roots refers to a missing node")

    def root_is_leaf(self, root: int) -> bool:
        return bool(self.true_leaf[root] and self.false_leaf[root]
                    and self.true_ids[root] == self.false_ids[root])

    def goes_true(self, k: int, v, m):
        """Whether node ``k`` sends feature value ``v`` (``m`` is te or a NumPy shim) to
        its true branch."""
        mode, split = int(self.modes[k]), self.splits[k]
        if mode == _MEMBER:
            hit = None
            for member in self.members[k]:
                eq = v == m.const(member)
                hit = eq if hit is None else hit | eq
            result = hit if hit is not None else m.false()
        else:
            s = m.const(split)
            result = {_LEQ: lambda: v <= s, _LT: lambda: v < s, _GTE: lambda: v >= s,
                      _GT: lambda: v > s, _EQ: lambda: v == s, _NEQ: lambda: v != s}[mode]()
        if self.tracks[k]:
            result = result | m.isnan(v)
        return result

    def leaf_reached(self, root: int, feature, m):
        """The index of the leaf a sample reaches: an expression built with ``m.select``
        (``feature(f)`` reads a feature)."""
        if self.root_is_leaf(root):
            return m.index(self.true_ids[root])

        def walk(k, depth=0):
            if depth > 1000:
                raise ValueError("a tree is deeper than 1000 levels (or has a cycle)")
            branches = []
            for ids, leaf in ((self.true_ids, self.true_leaf), (self.false_ids,
                                                               self.false_leaf)):
                branches.append(m.index(ids[k]) if leaf[k] else walk(ids[k], depth + 1))
            return m.select(self.goes_true(k, feature(self.features[k]), m), *branches)

        return walk(root)


class _NpShim:
    """What ``_Forest`` needs of te, for one NumPy sample (a row)."""

    def __init__(self, dtype):
        self.dtype = dtype

    def const(self, v):
        return np.array(v).astype(self.dtype)

    @staticmethod
    def index(v):
        return v

    @staticmethod
    def isnan(v):
        return bool(np.isnan(v))

    @staticmethod
    def false():
        return False

    @staticmethod
    def select(cond, a, b):
        return a if cond else b


class _TeShim:
    def __init__(self, dtype):
        self.dtype = dtype

    def const(self, v):
        return te.const(float(v), self.dtype)

    @staticmethod
    def index(v):
        return te.const(int(v), "int64")

    isnan = staticmethod(te.isnan)
    select = staticmethod(te.if_then_else)

    @staticmethod
    def false():
        return te.const(False, "bool")


@register
class TreeEnsemble(OpDef):
    """Regression or classification scores of a forest of decision trees (ai.onnx.ml
    opset 5): for every sample of ``X [N, F]`` each tree gives the leaf it reaches; the
    leaves' weights are aggregated per target (SUM, AVERAGE, MIN, MAX; targets no leaf
    reaches are 0, or the dtype's largest/lowest value for MIN/MAX) and transformed
    (NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO). Comparisons with NaN are false unless the
    node tracks missing values to its true branch."""

    name = "TreeEnsemble"
    pattern = OPAQUE
    attrs = {"aggregate_function": 1, "post_transform": 0, "tree_roots": REQUIRED,
             "nodes_modes": REQUIRED, "nodes_featureids": REQUIRED,
             "nodes_splits": REQUIRED, "nodes_truenodeids": REQUIRED,
             "nodes_falsenodeids": REQUIRED, "nodes_trueleafs": REQUIRED,
             "nodes_falseleafs": REQUIRED, "leaf_targetids": REQUIRED,
             "leaf_weights": REQUIRED, "n_targets": None, "nodes_hitrates": None,
             "nodes_missing_value_tracks_true": None, "membership_values": None}

    def infer(self, ctx):
        dtype = check_dtype(ctx, 0, ("float16", "float32", "float64"))
        x = ctx.type(0)
        if x.ndim != 2:
            raise ctx.error(f"X must be [N, F], got shape {list(x.shape)}")
        forest = _Forest(ctx, dtype)
        if any(not 0 <= f < x.shape[1] for f in forest.features):
            raise ctx.error(f"nodes_featureids must be in [0, {x.shape[1]})")
        return [out_type((x.shape[0], forest.n_targets), dtype)]

    def reference(self, ctx, x):
        forest = _Forest(ctx, str(x.dtype))
        shim = _NpShim(np_dtype(forest.work))
        n, t = x.shape[0], forest.n_targets
        init = {"SUM": 0.0, "AVERAGE": 0.0, "MIN": np.inf, "MAX": -np.inf}[forest.aggregate]
        raw = np.full((n, t), init)
        for i, row in enumerate(x.astype(shim.dtype)):
            for root in forest.roots:
                leaf = forest.leaf_reached(root, row.__getitem__, shim)
                target, w = forest.targets[leaf], forest.weights[leaf]
                combine = {"MIN": min, "MAX": max}.get(forest.aggregate, lambda a, b: a + b)
                raw[i, target] = combine(raw[i, target], w)
        info = np.finfo(x.dtype)
        raw = {"AVERAGE": raw / len(forest.roots), "SUM": raw,
               "MIN": np.minimum(raw, float(info.max)),
               "MAX": np.maximum(raw, float(info.min))}[forest.aggregate]
        return [_np_transform(raw, forest.transform).astype(x.dtype)]

    def compute(self, ctx, x):
        forest = _Forest(ctx, x.dtype)
        name = ctx.name or self.name
        n, t, trees = x.shape[0], forest.n_targets, len(forest.roots)
        work = "float32" if x.dtype == "float16" else x.dtype
        shim = _TeShim(forest.work)

        def leaf_body(i, r):
            def feature(f):
                return te.cast(x[i, f], forest.work)

            def pick(lo, hi):  # a balanced select over the tree index r
                if hi - lo == 1:
                    return forest.leaf_reached(forest.roots[lo], feature, shim)
                mid = (lo + hi) // 2
                return te.if_then_else(r < mid, pick(lo, mid), pick(mid, hi))

            once = te.reduce_axis(1, "once")
            return te.sum(pick(0, trees), axis=once)

        leaf = te.compute((n, trees), leaf_body, name=name + "_leaf")
        targets = ConstantTable(np.array(forest.targets, np.int64), name + "_targets")
        acc = sum_dtype(work) if forest.aggregate in ("SUM", "AVERAGE") else work
        weights = ConstantTable(forest.weights.astype(np_dtype(acc)), name + "_weights")
        r = te.reduce_axis(trees, "tree")
        reducer = {"SUM": te.sum, "AVERAGE": te.sum, "MIN": te.min, "MAX": te.max}[
            forest.aggregate]
        raw = te.compute((n, t), lambda i, j: reducer(
            weights[leaf[i, r]], axis=r, where=targets[leaf[i, r]] == j), name=name + "_raw")
        info = np.finfo(np_dtype(x.dtype))

        def aggregated(i, j):
            v = raw[i, j]
            if forest.aggregate == "AVERAGE":
                return te.cast(v / float(trees), work)
            if forest.aggregate == "MIN":
                return te.minimum(v, te.const(float(info.max), work))
            if forest.aggregate == "MAX":
                return te.maximum(v, te.const(float(info.min), work))
            return te.cast(v, work)

        return [_te_transform(aggregated, (n, t), forest.transform, x.dtype, work, name)]


def _np_transform(raw, transform: str):
    if transform == "LOGISTIC":
        return 1.0 / (1.0 + np.exp(-raw))
    if transform in ("SOFTMAX", "SOFTMAX_ZERO"):
        keep = np.ones(raw.shape, bool) if transform == "SOFTMAX" else raw != 0
        shifted = raw - np.max(np.where(keep, raw, -np.inf), axis=1, keepdims=True)
        e = np.where(keep, np.exp(np.where(keep, shifted, 0)), 0.0)
        total = e.sum(axis=1, keepdims=True)
        return np.where(total > 0, e / np.where(total > 0, total, 1), 0.0)
    return raw


def _te_transform(value, shape, transform: str, dtype: str, work: str, name: str):
    n, t = shape
    if transform == "NONE":
        return te.compute(shape, lambda i, j: te.cast(value(i, j), dtype), name=name)
    if transform == "LOGISTIC":
        return te.compute(shape, lambda i, j: te.cast(te.sigmoid(value(i, j)), dtype),
                          name=name)
    base = te.compute(shape, value, name=name + "_scores")
    zero = te.const(0.0, work)

    def keep(i, j):
        return base[i, j] != zero if transform == "SOFTMAX_ZERO" else te.const(True, "bool")

    j1 = te.reduce_axis(t, "t")
    mx = te.compute((n,), lambda i: te.max(base[i, j1], axis=j1, where=keep(i, j1)),
                    name=name + "_max")
    e = te.compute(shape, lambda i, j: te.if_then_else(
        keep(i, j), te.exp(base[i, j] - mx[i]), zero), name=name + "_exp")
    j2 = te.reduce_axis(t, "t")
    total = te.compute((n,), lambda i: te.sum(e[i, j2], axis=j2), name=name + "_total")
    return te.compute(shape, lambda i, j: te.cast(te.if_then_else(
        total[i] > zero, e[i, j] / total[i], zero), dtype), name=name)


# -- TfIdfVectorizer --------------------------------------------------------------------
class _Pool:
    """The n-grams of a TfIdfVectorizer node that are counted (lengths in
    [min_gram_length, max_gram_length]; a repeated n-gram counts for its last entry),
    each with its output column."""

    def __init__(self, ctx):
        a = ctx.attrs
        if a["pool_strings"]:
            raise UnsupportedOpError(f"TfIdfVectorizer node {ctx.name!r}: string pools "
                                     "(pool_strings) are not supported (string tensors)")
        pool = [int(v) for v in (a["pool_int64s"] or [])]
        counts = [int(c) for c in a["ngram_counts"]]
        columns = [int(c) for c in a["ngram_indexes"]]
        lo, hi = int(a["min_gram_length"]), int(a["max_gram_length"])
        if not 1 <= lo <= hi:
            raise ctx.error(f"need 1 <= min_gram_length <= max_gram_length, got {lo} and {hi}")
        if int(a["max_skip_count"]) < 0:
            raise ctx.error("max_skip_count must not be negative")
        if a["mode"] not in ("TF", "IDF", "TFIDF"):
            raise ctx.error(f"mode must be TF, IDF or TFIDF, got {a['mode']!r}")
        if any(c < 0 for c in columns):
            raise ctx.error("ngram_indexes must not be negative")
        self.columns = max(columns) + 1 if columns else 0
        grams, number = {}, 0
        for size, start in enumerate(counts, start=1):
            end = counts[size] if size < len(counts) else len(pool)
            if not 0 <= start <= end <= len(pool) or (end - start) % size:
                raise ctx.error(f"ngram_counts {counts} do not split a pool of "
                                f"{len(pool)} items into n-grams")
            for k in range(start, end, size):
                if number >= len(columns):
                    raise ctx.error(f"ngram_indexes has {len(columns)} entries for more "
                                    "n-grams")
                if lo <= size <= hi:
                    grams[tuple(pool[k:k + size])] = columns[number]
                number += 1
        self.grams = list(grams.items())  # [(tokens, column)]
        self.weights = [float(w) for w in (a["weights"] or [])]
        if self.weights and len(self.weights) < self.columns:
            raise ctx.error(f"weights has {len(self.weights)} entries for {self.columns} "
                            "output columns")


@register
class TfIdfVectorizer(OpDef):
    """Counts of the pool's n-grams in each row of integer tokens ``X`` (``[C]`` or
    ``[B, C]``), as float32 ``[columns]`` or ``[B, columns]``: an n-gram of length n is
    counted at every start and every distance ``1 .. max_skip_count + 1`` between its
    tokens (unigrams once per position). ``mode`` TF gives counts, IDF the column's weight
    (1 without weights) where the count is positive, TFIDF weight times count."""

    name = "TfIdfVectorizer"
    pattern = OPAQUE
    attrs = {"mode": REQUIRED, "min_gram_length": REQUIRED, "max_gram_length": REQUIRED,
             "max_skip_count": REQUIRED, "ngram_counts": REQUIRED,
             "ngram_indexes": REQUIRED, "pool_int64s": None, "pool_strings": None,
             "weights": None}

    def infer(self, ctx):
        check_dtype(ctx, 0, ("int32", "int64"))
        x = ctx.type(0)
        if x.ndim > 2:
            raise ctx.error(f"X must be [C] or [B, C], got shape {list(x.shape)}")
        pool = _Pool(ctx)
        lead = (x.shape[0],) if x.ndim == 2 else ()
        return [out_type(lead + (pool.columns,), "float32")]

    def reference(self, ctx, x):
        pool = _Pool(ctx)
        rows = x.reshape(-1, x.shape[-1] if x.ndim else 1)
        freq = np.zeros((rows.shape[0], pool.columns), np.int64)
        skips = int(ctx.attrs["max_skip_count"]) + 1
        for b, row in enumerate(rows.tolist()):
            for tokens, column in pool.grams:
                n = len(tokens)
                for dist in range(1, (skips if n > 1 else 1) + 1):
                    for s in range(len(row) - (n - 1) * dist):
                        if all(row[s + k * dist] == tokens[k] for k in range(n)):
                            freq[b, column] += 1
        return [_np_weighting(freq, pool, ctx.attrs["mode"]).reshape(ctx.out_types[0].shape)]

    def compute(self, ctx, x):
        pool, name = _Pool(ctx), ctx.name or self.name
        out = ctx.out_types[0]
        size = x.shape[-1] if x.shape else 1

        def token(b, pos):
            index = (b, pos) if len(x.shape) == 2 else (pos,) if x.shape else ()
            return te.cast(x[index], "int64")

        if not pool.grams or size == 0:
            counts = None
        else:
            counts = _te_counts(pool, token, out.shape[:-1], size,
                                int(ctx.attrs["max_skip_count"]) + 1, name)
        return [_te_weighting(counts, pool, ctx.attrs["mode"], out.shape, name)]


def _np_weighting(freq, pool, mode: str):
    w = np.array(pool.weights[:pool.columns], np.float32) if pool.weights else None
    if mode == "TF":
        return freq.astype(np.float32)
    if mode == "IDF":
        return np.where(freq > 0, w if w is not None else np.float32(1), 0).astype(np.float32)
    return (freq * w if w is not None else freq).astype(np.float32)


def _te_counts(pool, token, lead: tuple, size: int, skips: int, name: str):
    """A stage ``[*lead, G]``: how often each counted n-gram occurs in each row."""
    tokens = max(len(t) for t, _ in pool.grams)
    table = np.zeros((len(pool.grams), tokens), np.int64)
    lengths = np.zeros(len(pool.grams), np.int64)
    for g, (t, _) in enumerate(pool.grams):
        table[g, :len(t)] = t
        lengths[g] = len(t)
    tok = ConstantTable(table, name + "_pool")
    length = ConstantTable(lengths, name + "_lengths")
    d, s = te.reduce_axis(skips, "skip"), te.reduce_axis(size, "start")

    def body(*idx):
        b, g = (idx[0] if lead else None), idx[-1]
        n = length[g]
        dist = d + 1
        conds = [s + (n - 1) * dist < size, (n > 1) | (d == 0)]
        for k in range(tokens):
            pos = te.minimum(s + k * dist, size - 1)
            conds.append((n <= k) | (token(b, pos) == tok[g, k]))
        return te.sum(te.const(1, "int64"), axis=[d, s], where=te.all(*conds))

    return te.compute(lead + (len(pool.grams),), body, name=name + "_counts")


def _te_weighting(counts, pool, mode: str, shape, name: str):
    """The output ``[*lead, columns]`` from the per-n-gram counts."""
    columns = [c for _, c in pool.grams]
    injective = len(set(columns)) == len(columns)
    weights = ConstantTable(np.array(pool.weights[:pool.columns], np.float32),
                            name + "_weights") if pool.weights and mode != "TF" else None
    if counts is not None and injective:
        inverse = np.full(pool.columns, -1, np.int64)
        inverse[columns] = np.arange(len(columns))
        gram_of = ConstantTable(inverse, name + "_gram_of")
    elif counts is not None:
        column_of = ConstantTable(np.array(columns, np.int64), name + "_column_of")

    def frequency(idx):
        if counts is None:
            return te.const(0, "int64")
        lead, col = idx[:-1], idx[-1]
        if injective:
            g = gram_of[col]
            return te.if_then_else(g >= 0, counts[(*lead, te.maximum(g, 0))],
                                   te.const(0, "int64"))
        r = te.reduce_axis(len(columns), "gram")
        return te.sum(counts[(*lead, r)], axis=r, where=column_of[r] == col)

    freq = te.compute(shape, lambda *i: frequency(i), name=name + "_freq")

    def body(*i):
        f = freq[i]
        w = weights[i[-1]] if weights is not None else te.const(1.0, "float32")
        if mode == "TF":
            return te.cast(f, "float32")
        if mode == "IDF":
            return te.if_then_else(f > 0, w, te.const(0.0, "float32"))
        return te.cast(f, "float32") * w

    return te.compute(shape, body, name=name)
