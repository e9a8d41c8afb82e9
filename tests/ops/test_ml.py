"""Classical ML operators (dlc/ops/ml.py): Binarizer, ArrayFeatureExtractor, LabelEncoder,
TreeEnsemble and TfIdfVectorizer, against expectations written here; their ONNX
converters (ai.onnx.ml models that import no default opset); must-fail cases."""

import numpy as np
import pytest
from onnx import TensorProto, helper

import dlc
from dlc.errors import ModelError, UnsupportedOpError
from dlc.graph import GraphBuilder


def run(op, *arrays, **attrs):
    """Compile one ``op`` node over input arrays and run it."""
    g = GraphBuilder(op.lower())
    syms = [g.input(f"in{k}", a.shape, a.dtype) for k, a in enumerate(arrays)]
    g.output(g.op(op, *syms, **attrs))
    return dlc.compile(g.build()).run(*arrays)[0]


def same(got, want, dtype=None):
    want = np.asarray(want, dtype)
    assert got.dtype == want.dtype and got.shape == want.shape, (got, want)
    np.testing.assert_allclose(got, want, rtol=1e-6)


# -- Binarizer ----------------------------------------------------------------------------
@pytest.mark.parametrize("x, threshold, want", [
    (np.array([[-1, 0.5, 1.0], [1.5, np.nan, np.inf]], np.float32), 0.5,
     [[0, 0, 1], [1, 0, 1]]),
    (np.array([-2, -1, 0, 1, 3], np.int64), -0.5, [0, 0, 1, 1, 1]),
    (np.array([-2, 2, 3], np.int32), 2.0, [0, 0, 1]),
    (np.array([0.1, 0.2], np.float64), 0.15, [0, 1]),
])
def test_binarizer(x, threshold, want):
    same(run("Binarizer", x, threshold=threshold), want, x.dtype)


# -- ArrayFeatureExtractor ----------------------------------------------------------------
def test_array_feature_extractor_last_axis_negative_and_repeated_indices():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    idx = np.array([[3, 0, -1, 1]], np.int64)
    same(run("ArrayFeatureExtractor", x, idx), x[..., [3, 0, 3, 1]])


def test_array_feature_extractor_of_a_vector_is_one_row():
    x = np.array([5, 6, 7], np.int64)
    same(run("ArrayFeatureExtractor", x, np.array(2, np.int64)), [[7]], np.int64)


# -- LabelEncoder -------------------------------------------------------------------------
def test_label_encoder_int_to_float_with_default():
    x = np.array([[1, 7], [3, 1]], np.int64)
    got = run("LabelEncoder", x, keys_int64s=[1, 3], values_floats=[0.5, -2.0],
              default_float=9.0)
    same(got, [[0.5, 9.0], [-2.0, 0.5]], np.float32)


def test_label_encoder_float_keys_nan_and_repeated_key():
    x = np.array([np.nan, 1.5, 2.0, -0.0], np.float32)
    got = run("LabelEncoder", x, keys_floats=[1.5, float("nan"), 1.5, 0.0],
              values_int64s=[10, 20, 30, 40])
    same(got, [20, 30, -1, 40], np.int64)  # the last 1.5 wins; -0.0 == 0.0


def test_label_encoder_tensor_attributes_keep_negative_zero():
    x = np.array([4, 5, 6], np.int32)
    got = run("LabelEncoder", x, keys_tensor=np.array([4, 6], np.int32),
              values_tensor=np.array([1.25, 3.5], np.float64),
              default_tensor=np.array([-0.0], np.float64))
    same(got, [1.25, -0.0, 3.5], np.float64)
    assert np.signbit(got[1])


def test_label_encoder_must_fail():
    with pytest.raises(ModelError, match="keys but"):
        run("LabelEncoder", np.zeros(2, np.int64), keys_int64s=[1, 2], values_int64s=[1])
    with pytest.raises(ModelError, match="dtype"):
        run("LabelEncoder", np.zeros(2, np.int32), keys_int64s=[1], values_int64s=[1])


# -- TreeEnsemble -------------------------------------------------------------------------
def _tree(**overrides):
    """Two trees over 2 features and 2 targets.

    tree 0: node 0 (x0 <= 1.5) ? leaf 0 (t0, 1.0) : node 1 (x1 > 0, NaN goes true)
            node 1 ? leaf 1 (t1, 2.0) : leaf 2 (t0, 4.0)
    tree 1: node 2 (x1 in {3, 5}) ? leaf 3 (t1, 8.0) : leaf 4 (t1, 16.0)
    """
    attrs = dict(
        nodes_modes=np.array([0, 3, 6], np.uint8), nodes_featureids=[0, 1, 1],
        nodes_splits=np.array([1.5, 0.0, 0.0], np.float32),
        nodes_truenodeids=[0, 1, 3], nodes_trueleafs=[1, 1, 1],
        nodes_falsenodeids=[1, 2, 4], nodes_falseleafs=[0, 1, 1],
        nodes_missing_value_tracks_true=[0, 1, 0],
        membership_values=np.array([3, 5, np.nan], np.float32),
        leaf_targetids=[0, 1, 0, 1, 1],
        leaf_weights=np.array([1.0, 2.0, 4.0, 8.0, 16.0], np.float32),
        tree_roots=[0, 2], n_targets=2, aggregate_function=1, post_transform=0)
    attrs.update(overrides)
    return attrs


_X = np.array([[1.0, 3.0],        # leaf 0, leaf 3 -> [1, 8]
               [2.0, 1.0],        # leaf 1, leaf 4 -> [0, 18]
               [2.0, -1.0],       # leaf 2, leaf 4 -> [4, 16]
               [np.nan, np.nan],  # x0 <= 1.5 is false, NaN tracks true: leaf 1, leaf 4
               [1.5, 5.0]], np.float32)  # leaf 0, leaf 3


@pytest.mark.parametrize("aggregate, want", [
    (1, [[1, 8], [0, 18], [4, 16], [0, 18], [1, 8]]),                    # SUM
    (0, [[0.5, 4], [0, 9], [2, 8], [0, 9], [0.5, 4]]),                   # AVERAGE
    (3, [[1, 8], [np.finfo(np.float32).min, 16], [4, 16],
         [np.finfo(np.float32).min, 16], [1, 8]]),                       # MAX
])
def test_tree_ensemble_aggregates(aggregate, want):
    same(run("TreeEnsemble", _X, **_tree(aggregate_function=aggregate)), want, np.float32)


def test_tree_ensemble_post_transforms_and_float64():
    raw = np.array([[1, 8], [0, 18], [4, 16], [0, 18], [1, 8]], np.float64)
    got = run("TreeEnsemble", _X.astype(np.float64), **_tree(post_transform=2))
    same(got, 1 / (1 + np.exp(-raw)))
    soft = np.exp(raw - raw.max(1, keepdims=True))
    got = run("TreeEnsemble", _X, **_tree(post_transform=1))
    np.testing.assert_allclose(got, soft / soft.sum(1, keepdims=True), rtol=1e-6)
    top = np.where(raw != 0, raw, -np.inf).max(1, keepdims=True)
    zero = np.exp(raw - top) * (raw != 0)  # zero scores stay zero
    got = run("TreeEnsemble", _X, **_tree(post_transform=3))
    np.testing.assert_allclose(got, zero / zero.sum(1, keepdims=True), rtol=1e-6)


def test_tree_ensemble_single_leaf_tree_and_neq_with_nan():
    attrs = dict(nodes_modes=np.array([0, 5], np.uint8), nodes_featureids=[0, 0],
                 nodes_splits=np.array([0, 2], np.float32), nodes_truenodeids=[0, 1],
                 nodes_trueleafs=[1, 1], nodes_falsenodeids=[0, 2], nodes_falseleafs=[1, 1],
                 leaf_targetids=[0, 0, 0], leaf_weights=np.array([5, 1, 2], np.float32),
                 tree_roots=[0, 1], n_targets=1)
    x = np.array([[2.0], [3.0], [np.nan]], np.float32)
    # tree 0 is a leaf (5); tree 1: x != 2 (true for NaN) -> 1, else 2
    same(run("TreeEnsemble", x, **attrs), [[7], [6], [6]], np.float32)


def test_tree_ensemble_must_fail():
    with pytest.raises(ModelError, match="membership_values"):
        run("TreeEnsemble", _X, **_tree(membership_values=None))
    with pytest.raises(ModelError, match="featureids"):
        run("TreeEnsemble", _X, **_tree(nodes_featureids=[0, 1, 2]))
    with pytest.raises(UnsupportedOpError, match="PROBIT"):
        run("TreeEnsemble", _X, **_tree(post_transform=4))


# -- TfIdfVectorizer ----------------------------------------------------------------------
_POOL = dict(pool_int64s=[2, 3, 5, 4, 5, 6, 7, 8, 6, 7], ngram_counts=[0, 4],
             ngram_indexes=[0, 1, 2, 3, 4, 5, 6])  # unigrams 2 3 5 4, bigrams 56 78 67


def _expected_counts(row, grams, skips, lo, hi):
    """Brute force: every n-gram at every start and every token distance."""
    counts = []
    for gram in grams:
        n, total = len(gram), 0
        if lo <= n <= hi:
            for dist in range(1, (skips + 1 if n > 1 else 1) + 1):
                for s in range(len(row)):
                    pos = [s + k * dist for k in range(n)]
                    total += pos[-1] < len(row) and [row[p] for p in pos] == list(gram)
        counts.append(total)
    return counts


@pytest.mark.parametrize("lo, hi, skips", [(1, 2, 5), (2, 2, 0), (1, 1, 3), (2, 2, 2)])
def test_tfidf_counts_against_brute_force(lo, hi, skips):
    x = np.array([[1, 1, 3, 3, 3, 7, 8, 6, 7, 5, 6, 8], [5, 6, 7, 8, 2, 5, 4, 6, 7, 7, 8, 5]],
                 np.int32)
    grams = [(2,), (3,), (5,), (4,), (5, 6), (7, 8), (6, 7)]
    got = run("TfIdfVectorizer", x, mode="TF", min_gram_length=lo, max_gram_length=hi,
              max_skip_count=skips, **_POOL)
    want = [_expected_counts(list(r), grams, skips, lo, hi) for r in x]
    same(got, want, np.float32)


def test_tfidf_weights_idf_and_tfidf_on_a_vector():
    x = np.array([5, 6, 5, 6, 2, 2, 2], np.int64)
    weights = [0.5, 1, 1, 1, 0.25, 1, 1]
    kw = dict(min_gram_length=1, max_gram_length=2, max_skip_count=0, weights=weights,
              **_POOL)
    counts = np.array([3, 0, 2, 0, 2, 0, 0], np.float32)
    same(run("TfIdfVectorizer", x, mode="IDF", **kw), [0.5, 0, 1, 0, 0.25, 0, 0], np.float32)
    same(run("TfIdfVectorizer", x, mode="TFIDF", **kw), counts * weights, np.float32)


def test_tfidf_shared_columns_and_unused_columns():
    x = np.array([[2, 3, 3, 9]], np.int64)
    got = run("TfIdfVectorizer", x, mode="TF", min_gram_length=1, max_gram_length=1,
              max_skip_count=0, pool_int64s=[2, 3, 9], ngram_counts=[0],
              ngram_indexes=[4, 1, 4])
    same(got, [[0, 2, 0, 0, 2]], np.float32)


def test_tfidf_must_fail():
    x = np.zeros((2, 3), np.int64)
    with pytest.raises(ModelError, match="ngram_counts"):
        run("TfIdfVectorizer", x, mode="TF", min_gram_length=1, max_gram_length=2,
            max_skip_count=0, pool_int64s=[1, 2, 3], ngram_counts=[0, 2],
            ngram_indexes=[0, 1])
    with pytest.raises(ModelError, match="mode"):
        run("TfIdfVectorizer", x, mode="BM25", min_gram_length=1, max_gram_length=1,
            max_skip_count=0, pool_int64s=[1], ngram_counts=[0], ngram_indexes=[0])
    with pytest.raises(ModelError, match="dtype"):
        run("TfIdfVectorizer", x.astype(np.float32), mode="TF", min_gram_length=1,
            max_gram_length=1, max_skip_count=0, pool_int64s=[1], ngram_counts=[0],
            ngram_indexes=[0])


# -- ONNX -----------------------------------------------------------------------------------
def _ml_model(node, inputs, outputs, opsets):
    graph = helper.make_graph([node], "ml", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v)
                                                   for d, v in opsets])


def test_onnx_ml_model_without_default_opset():
    node = helper.make_node("Binarizer", ["x"], ["y"], domain="ai.onnx.ml", threshold=0.0)
    model = _ml_model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
                      [("ai.onnx.ml", 1)])
    x = np.array([-1, 0, 2], np.float32)
    same(dlc.compile(model).run(x)[0], [0, 0, 1], np.float32)


def test_onnx_default_domain_node_needs_the_default_opset():
    node = helper.make_node("Relu", ["x"], ["y"])
    model = _ml_model(node, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
                      [("ai.onnx.ml", 1)])
    with pytest.raises(ModelError, match="default operator set"):
        dlc.compile(model)


def test_onnx_label_encoder_strings_are_unsupported():
    node = helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml",
                            keys_int64s=[1], values_strings=["a"])
    model = _ml_model(node, [helper.make_tensor_value_info("x", TensorProto.INT64, [3])],
                      [helper.make_tensor_value_info("y", TensorProto.STRING, [3])],
                      [("", 18), ("ai.onnx.ml", 2)])
    with pytest.raises(UnsupportedOpError, match="string"):
        dlc.compile(model)
