"""Per-decision reasons from the trees' paths, precomputed per leaf (Saabas attribution).

A tree's output for a row is its root's expected value (over the training rows) plus, at every split on the
row's path, the change of expected value from the node to the child taken. Credit each change to the split's feature and the
contributions of a tree depend on nothing but the leaf reached — so they are computed once per leaf, when
the champion is loaded, and a decision only asks LightGBM which leaf each tree reaches (``pred_leaf``, the
same C++ walk as ``predict``) and adds the leaves' rows up.

Properties (tested in ``tests/serving/test_attribution.py``): the contributions plus the bias equal the
model's raw score exactly (local accuracy), so the leaves also give the prediction; a feature never on the
path gets zero. Unlike TreeSHAP they are not averaged over split orders, so a feature's credit depends on
where in the trees it is split on; ``docs/decisions.md`` gives the agreement measured on the held-out
period and why the hot path uses this method (``tollgate bench --suite reasons``: TreeSHAP 1.3 ms a row
for this model, path attribution 0.07 ms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

# Beyond this many rows the per-leaf table is summed through a sparse product instead of a dense gather
# (the gather allocates rows x trees x features floats).
_DENSE_ROWS = 8


@dataclass
class Attribution:
    raw: np.ndarray  # the model's raw score (log-odds) per row
    contributions: np.ndarray  # rows x features, log-odds; their row sums + bias == raw
    bias: float


class PathAttribution:
    """Leaf-indexed path contributions for a LightGBM booster."""

    def __init__(self, booster) -> None:
        self.booster = booster
        dump = booster.dump_model()
        self.n_features = booster.num_feature()
        # what probability() assumes: a plain sum of trees through the logistic link
        self.objective = str(dump.get("objective", ""))
        if dump.get("average_output"):
            self.objective += " average_output"
        leaf_values: list[float] = []
        rows, cols, vals = [], [], []
        offsets, bias = [], 0.0
        for tree in dump["tree_info"]:
            base = len(leaf_values)
            offsets.append(base)
            leaf_values.extend([0.0] * tree["num_leaves"])
            root = tree["tree_structure"]
            expected = _expectations(root)
            bias += expected[id(root)]
            stack = [(root, {})]
            while stack:
                node, path = stack.pop()
                if _is_leaf(node):
                    leaf = base + node.get("leaf_index", 0)  # a single-leaf tree's root has no index
                    leaf_values[leaf] = node["leaf_value"]
                    for feature, value in path.items():
                        rows.append(leaf)
                        cols.append(feature)
                        vals.append(value)
                    continue
                feature, here = node["split_feature"], expected[id(node)]
                for child in (node["left_child"], node["right_child"]):
                    stack.append((child, {**path, feature: path.get(feature, 0.0) + expected[id(child)] - here}))
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.leaf_values = np.asarray(leaf_values, dtype=float)
        self.bias = float(bias)
        shape = (len(leaf_values), self.n_features)
        self.table = sparse.csr_matrix((vals, (rows, cols)), shape=shape, dtype=float)
        self.dense = self.table.toarray()

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Global leaf index per row and tree."""
        local = self.booster.predict(x, pred_leaf=True, num_threads=1)
        return np.asarray(local, dtype=np.int64).reshape(len(x), -1) + self.offsets

    def raw_of(self, leaves: np.ndarray) -> np.ndarray:
        """The raw score (log-odds) per row of :meth:`leaves`."""
        return self.leaf_values[leaves].sum(axis=1)

    def contributions_of(self, leaves: np.ndarray) -> np.ndarray:
        """Rows x features contributions (log-odds) for the rows of :meth:`leaves`."""
        if len(leaves) <= _DENSE_ROWS:
            return self.dense[leaves].sum(axis=1)
        n, trees = leaves.shape
        hits = sparse.csr_matrix((np.ones(n * trees), leaves.ravel(), np.arange(0, n * trees + 1, trees)),
                                 shape=(n, self.table.shape[0]))
        return (hits @ self.table).toarray()

    def explain(self, x: np.ndarray) -> Attribution:
        leaves = self.leaves(x)
        return Attribution(raw=self.raw_of(leaves), contributions=self.contributions_of(leaves), bias=self.bias)


def _is_leaf(node: dict) -> bool:
    return "split_feature" not in node


def _expectations(root: dict) -> dict[int, float]:
    """Each node's expected output over the training rows that reached it (leaf values weighted by their
    row counts) — the baseline TreeSHAP uses too, so that with one split per tree both methods agree."""
    out: dict[int, float] = {}

    def visit(node: dict) -> tuple[float, float]:
        if _is_leaf(node):
            out[id(node)] = node["leaf_value"]
            return node["leaf_value"], float(node.get("leaf_count", 0))
        (left, n_left), (right, n_right) = visit(node["left_child"]), visit(node["right_child"])
        total = n_left + n_right
        out[id(node)] = (left * n_left + right * n_right) / total if total else (left + right) / 2
        return out[id(node)], total

    visit(root)
    return out


def probability(raw: np.ndarray) -> np.ndarray:
    """The binary objective's link: what ``booster.predict`` returns for these raw scores."""
    return 1.0 / (1.0 + np.exp(-raw))
