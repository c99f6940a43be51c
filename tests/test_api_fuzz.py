"""Property-based run of the OpenAPI description (schemathesis): no 5xx, and responses match the schema.

Schemathesis generates requests that fit the schema (positive) and requests that do not (negative); every one
must get a documented status with a body matching the documented schema, never a 5xx. A schema-valid request
may still be refused for what the schema cannot say (an event for an unknown lead, a duplicate id in a batch, a
timestamp outside 1678-2262), so schemathesis' "positive data is accepted" check is left out. Bounded: a fixed
number of examples per run, no example database.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from leadscore.api.main import create_app

pytest_plugins = ["api_fixtures"]

pytestmark = pytest.mark.slow

# Left out: "positive data is accepted" (see above), and "negative data is rejected" because a free-form text
# query parameter cannot tell an object serialised as text (``stage=a,b``) from text, so it reports what is not a
# bug. What it did find (a boolean taken for a number, a bare number for a timestamp, an unknown or repeated query
# parameter) is now refused and tested in test_api_ingest, test_api_scoring and here through the 5xx/schema checks.
EXCLUDED = [positive_data_acceptance, negative_data_rejection]
EXAMPLES = int(os.environ.get("LEADSCORE_FUZZ_EXAMPLES", "120"))  # more for a deeper run


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
def test_every_request_gets_a_documented_answer_and_never_a_5xx(store_url, make_settings, model_registry, mode):
    from leadscore import registry

    registry.promote("1", uri=model_registry)  # with a model, so that scoring routes really score
    app = create_app(make_settings(store_url, max_batch_size=20, mlflow_tracking_uri=model_registry))
    api = schemathesis.openapi.from_asgi("/openapi.json", app)

    @given(case=api.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case):
        case.call_and_validate(headers={"X-API-Key": "all-key"}, excluded_checks=EXCLUDED)

    try:
        run()
    finally:
        from schemathesis.python import asgi

        asgi.shutdown_lifespans()  # close this app's engine now rather than at exit
