"""The SQLite reader's bulk decoding of doubles gives what Feast's ValueProto gives, value for value."""

import math

import numpy as np
from feast.protos.feast.types.Value_pb2 import Value

from features.online import DOUBLE_TAG, _fill, _number


def _parsed(data: bytes) -> float:
    value = Value()
    value.ParseFromString(data)
    return _number(value)


def test_fill_decodes_every_value_kind_as_the_protobuf_class_does():
    values = [Value(double_val=v) for v in (0.0, -0.0, 1.5, -2.25e-300, math.inf, math.nan, 1 / 3)]
    values += [Value(int64_val=7), Value(int32_val=-3), Value(float_val=0.1), Value(bool_val=True), Value()]
    serialized = [v.SerializeToString() for v in values]
    assert sum(len(d) == 9 and d[0] == DOUBLE_TAG for d in serialized) == 7  # the fast path is taken
    keys = [f"k{i}".encode() for i in range(len(serialized))]
    # two views, features in both orders, a feature the reader did not ask for
    found = [(i % 2, key, "f" if i % 3 else "g", data) for i, (key, data) in enumerate(zip(keys, serialized))]
    found.append((0, keys[0], "unasked", Value(double_val=9.0).SerializeToString()))
    lookups = [({key: i for i, key in enumerate(keys)}, {"f": 0, "g": 1}) for _ in range(2)]
    blocks = [np.full((len(keys), 2), np.nan) for _ in range(2)]
    _fill(blocks, lookups, found)
    expected = [np.full((len(keys), 2), np.nan) for _ in range(2)]
    for v, key, feature, data in found[:-1]:
        expected[v][lookups[v][0][key], lookups[v][1][feature]] = _parsed(data)
    for got, want in zip(blocks, expected):
        np.testing.assert_array_equal(got, want)
    assert math.copysign(1.0, blocks[1][1, 0]) == -1.0  # -0.0 kept
