"""`ledger demo`: the whole product loop, end to end, on real components."""
