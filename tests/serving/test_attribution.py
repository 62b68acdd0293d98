"""Path attribution: exact scores from the leaves, contributions that add up, and agreement with a row-by-row
walk of the trees (and with TreeSHAP where the two must coincide)."""

import lightgbm as lgb
import numpy as np
import pytest

from serving.attribution import PathAttribution, probability


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x = np.column_stack([rng.integers(0, 12, n).astype(float), rng.normal(size=n), rng.uniform(0, 100, n),
                         rng.normal(size=n), rng.normal(size=n)])
    x[rng.random(n) < 0.1, 2] = np.nan  # missing values take the default branch
    x[rng.random(n) < 0.05, 0] = np.nan
    logit = np.isin(x[:, 0], [1, 4, 7]) * 1.5 + x[:, 1] - 0.02 * np.nan_to_num(x[:, 2], nan=50) + 0.3 * x[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return x, y


def _fit(num_leaves=15, rounds=60):
    x, y = _data()
    data = lgb.Dataset(x, label=y, categorical_feature=[0])
    return lgb.train({"objective": "binary", "num_leaves": num_leaves, "min_child_samples": 20, "verbose": -1,
                      "seed": 5, "deterministic": True, "num_threads": 1}, data, num_boost_round=rounds)


@pytest.fixture(scope="module")
def booster():
    return _fit()


def _leaves_under(node: dict) -> list[dict]:
    if "leaf_index" in node:
        return [node]
    return _leaves_under(node["left_child"]) + _leaves_under(node["right_child"])


def _mean(node: dict) -> float:
    """The node's expected output: its leaves' values weighted by their training rows."""
    leaves = _leaves_under(node)
    return sum(leaf["leaf_value"] * leaf["leaf_count"] for leaf in leaves) / sum(leaf["leaf_count"] for leaf in leaves)


def _walk(tree: dict, row: np.ndarray, out: np.ndarray) -> float:
    """One tree, one row, by hand (numerical splits only): credit each step's change to its feature."""
    node = tree
    while "leaf_index" not in node:
        value = row[node["split_feature"]]
        if np.isnan(value):
            left = node["default_left"]
        else:
            left = value <= node["threshold"]
        child = node["left_child"] if left else node["right_child"]
        out[node["split_feature"]] += _mean(child) - _mean(node)
        node = child
    return node["leaf_value"]


def test_leaves_give_the_models_exact_score_and_contributions_add_up(booster):
    x, _ = _data(500, seed=1)
    paths = PathAttribution(booster)
    explained = paths.explain(x)
    np.testing.assert_allclose(explained.raw, booster.predict(x, raw_score=True), rtol=0, atol=1e-12)
    np.testing.assert_allclose(probability(explained.raw), booster.predict(x), rtol=0, atol=1e-12)
    np.testing.assert_allclose(explained.contributions.sum(axis=1) + explained.bias, explained.raw, atol=1e-12)
    assert np.abs(explained.contributions[:, 4]).max() > 0  # a noise feature still gets split on ...
    assert np.abs(explained.contributions[:, 0]).mean() > np.abs(explained.contributions[:, 4]).mean()  # ... less


def test_precomputed_leaves_equal_a_row_by_row_walk():
    x, y = _data()
    numeric = lgb.train({"objective": "binary", "num_leaves": 15, "verbose": -1, "seed": 2, "num_threads": 1},
                        lgb.Dataset(x[:, 1:], label=y), num_boost_round=30)
    rows = _data(200, seed=4)[0][:, 1:]
    expected = np.zeros_like(rows)
    for i, row in enumerate(rows):
        for tree in numeric.dump_model()["tree_info"]:
            _walk(tree["tree_structure"], row, expected[i])
    np.testing.assert_allclose(PathAttribution(numeric).explain(rows).contributions, expected, atol=1e-12)


def test_small_and_large_batches_agree(booster):
    x, _ = _data(40, seed=2)
    paths = PathAttribution(booster)
    one_by_one = np.vstack([paths.explain(x[i:i + 1]).contributions for i in range(len(x))])
    np.testing.assert_allclose(paths.explain(x).contributions, one_by_one, atol=1e-12)


def test_with_single_split_trees_it_equals_treeshap():
    x, y = _data()
    stumps = lgb.train({"objective": "binary", "num_leaves": 2, "verbose": -1, "seed": 3, "num_threads": 1},
                       lgb.Dataset(x, label=y, categorical_feature=[0]), num_boost_round=50)
    rows = _data(100, seed=6)[0]
    shap = stumps.predict(rows, pred_contrib=True)
    explained = PathAttribution(stumps).explain(rows)
    np.testing.assert_allclose(explained.contributions, shap[:, :-1], atol=1e-9)
    np.testing.assert_allclose(explained.bias, shap[0, -1], atol=1e-9)


def test_a_feature_never_split_on_gets_nothing():
    x, y = _data()
    x[:, 3] = 1.0  # constant: no tree can split on it
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1},
                        lgb.Dataset(x, label=y), num_boost_round=20)
    assert not PathAttribution(booster).explain(_data(50, seed=3)[0]).contributions[:, 3].any()


def test_single_leaf_trees_are_all_bias():
    x = np.ones((200, 3))
    y = (np.arange(200) % 3 == 0).astype(float)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1},
                        lgb.Dataset(x, label=y), num_boost_round=3)  # nothing to split on: one leaf
    explained = PathAttribution(booster).explain(x[:5])
    np.testing.assert_allclose(explained.raw, booster.predict(x[:5], raw_score=True), atol=1e-12)
    assert not explained.contributions.any()
