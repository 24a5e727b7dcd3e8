"""HTTP API: a thin FastAPI layer over the `ledger` services, served under `/v1`."""
