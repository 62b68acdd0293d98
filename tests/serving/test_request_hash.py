"""The request digest keeps its text form: a retry after an upgrade still finds the decision logged before."""

import hashlib
import json

from serving.decisions import request_hash


def test_the_digest_is_sha256_of_the_sorted_json_dumps_text():
    payload = {"shipment_id": "S-1", "carrier": "AA", "declared_value": 60000.0, "customer_id": "Zürich",
               "equipment_id": None, "nested": {"b": 1, "a": [1.5, "x"]}}
    text = json.dumps(payload, sort_keys=True, default=str)
    assert request_hash(payload) == hashlib.sha256(text.encode()).hexdigest()
    assert request_hash({"b": 1, "a": 2}) == request_hash({"a": 2, "b": 1})
