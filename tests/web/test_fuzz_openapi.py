"""Fuzz every operation of the OpenAPI document over real HTTP: no input may cause a 5xx.

Schemathesis generates requests from the document the running API serves, with a bounded
number of examples per operation. Requests carry a collector API key and a contributor's
bearer token, so the authenticated operations get past authentication too.

NOTE: the tests drive schemathesis through its Hypothesis strategies (`as_strategy`). Its
pytest loader `schemathesis.pytest.from_fixture` fails under pytest 9.2 (schemathesis 4.32.5
sets `request.node._nodeid`, which pytest 9 no longer has), and the schema can only be loaded
once the live stack runs.
"""

import pytest
import schemathesis
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from sqlalchemy.orm import sessionmaker

from api.app import create_app
from ledger.config import Settings
from tests.api.test_api import sign_in

pytestmark = pytest.mark.e2e

#: Examples generated per operation; bounded so the whole fuzz run takes well under a minute.
EXAMPLES_PER_OPERATION = 30

#: Operations left out. Signing out would end the shared bearer token for every later example.
EXCLUDED = {("POST", "/v1/auth/sign-out")}


def documented_operations() -> list[tuple[str, str]]:
    """Return (method, path) of every operation, from an app built without a database."""
    document = create_app(Settings(_env_file=None, environment="test"), sessionmaker(), None).openapi()
    return sorted(
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if (method.upper(), path) not in EXCLUDED
    )


@pytest.fixture(scope="module")
def api_schema(live_stack):
    return schemathesis.openapi.from_url(f"{live_stack.base_url}/openapi.json")


@pytest.fixture(scope="module")
def auth_headers(live_stack):
    contributor = Account.create()
    live_stack.submit_sessions(contributor.address, 2)
    bearer = sign_in(live_stack.http, contributor, live_stack.settings)
    return {"X-API-Key": live_stack.collector_key, **bearer}


def test_every_operation_is_fuzzed(api_schema):
    served = {(result.ok().method.upper(), result.ok().path) for result in api_schema.get_all_operations()}

    assert served - EXCLUDED == set(documented_operations())


@pytest.mark.parametrize(("method", "path"), documented_operations())
def test_no_input_causes_server_error(api_schema, auth_headers, method, path):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def fuzz(case):  # type: ignore[no-untyped-def]
        response = case.call(headers=auth_headers, timeout=30)
        assert response.status_code < 500, f"{method} {case.formatted_path} returned {response.status_code}: {response.text[:500]}"

    fuzz()
