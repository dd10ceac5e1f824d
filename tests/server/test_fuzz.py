"""Schemathesis fuzzes every operation of the served OpenAPI schema: no 5xx, invalid data refused.

Valid and invalid requests (wrong types, missing fields, odd strings, path names) are generated from
the schema itself, with the admin token so the admin operations are exercised past the token check.
Each operation and mode is its own hypothesis run, bounded in examples.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance  # noqa: E402

from confidently.server.app import create_app  # noqa: E402
from confidently.server.settings import Settings  # noqa: E402

from .conftest import ADMIN_TOKEN  # noqa: E402

# Built without starting the app (no model loads): the schema does not depend on the model.
OPERATIONS = [(path, method.upper(), bool(op.get("parameters") or op.get("requestBody")))
              for path, ops in create_app(Settings()).openapi()["paths"].items() for method, op in ops.items()]
CASES = [pytest.param(path, method, mode, id=f"{method} {path} {mode.value}")
         for path, method, has_input in OPERATIONS
         for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if has_input or mode.value == "positive"]


@pytest.fixture(scope="module")
def server(serve, adapters_dir, tmp_path_factory):
    # Few, short texts keep each generated request cheap on the tiny model; a review queue, so the
    # review and feedback operations get past "no queue".
    with serve(adapters_dir=adapters_dir, max_texts=8, max_text_chars=200, batch_wait_ms=0,
               feedback_db=str(tmp_path_factory.mktemp("fuzz") / "feedback.db"), audit_fraction=0.5) as live:
        yield live


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(server.url + "/openapi.json")


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_no_server_errors(api_schema, path, method, mode):
    @given(case=api_schema[path][method].as_strategy(generation_mode=mode))
    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def fuzz(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60,
                               checks=[not_a_server_error, response_schema_conformance, negative_data_rejection])

    fuzz()
