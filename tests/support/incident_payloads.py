"""The incident's argument payloads: the empty filter and its relatives, as a model might send them
to an order search keyed by `customer_id` (shared by the built-in and the declared tools' tests)."""

INCIDENT_CALLS = {
    "empty": "{}",
    "required field missing": '{"status": "shipped", "limit": 5}',
    "operator instead of a value": '{"customer_id": {"$ne": null}}',
    "server-side javascript": '{"$where": "this.total > 0"}',
    "regex on an undeclared field": '{"name": {"$regex": ".*"}}',
    "regex instead of a value": '{"customer_id": {"$regex": ".*"}}',
    "operator in an optional field": '{"customer_id": "C-1001", "status": {"$ne": "x"}}',
    "ten megabyte string": '{"customer_id": "' + "A" * 10_000_000 + '"}',
    "deeply nested (small)": '{"customer_id": ' + "[" * 1500 + "]" * 1500 + "}",
    "deeply nested (large)": '{"customer_id": ' + '{"a": ' * 50_000 + "1" + "}" * 50_001,
    "wrong types": '{"customer_id": 1001, "limit": "all"}',
    "malformed json": '{"customer_id": "C-1001", "limit": ',
    "not an object": '"C-1001"',
    "null selector": '{"customer_id": null}',
    "empty selector": '{"customer_id": ""}',
    "dotted key": '{"customer_id": "C-1001", "shipping_address.city": "Springfield"}',
    "limit far past the cap": '{"customer_id": "C-1001", "limit": 1000000}',
    "negative limit": '{"customer_id": "C-1001", "limit": -1}',
    "array of selectors": '{"customer_id": ["C-1001", "C-1002"]}',
    "nul byte in selector": '{"customer_id": "C-1001\\u0000"}',
    "duplicate keys smuggling an operator": '{"customer_id": "C-1001", "customer_id": {"$gt": ""}}',
}
