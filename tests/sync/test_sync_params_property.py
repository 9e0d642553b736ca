"""Property: whatever strings and numbers a phone (or anyone) puts in the sync routes' query parameters and headers,
the answer is a 2xx or a 4xx that the published contract documents for that operation, in the error shape.

Every query parameter and header of every `/sync/` operation is read from openapi/openapi.json, so a parameter
added later is covered without editing this test. Values are arbitrary text (any Unicode in a query; printable
ASCII in a header, which is all HTTP carries), integers of any size, floats, or left out. The push sends an empty
change set, so the parameters decide the answer.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.config import ROOT
from tests.conftest import Api

SPEC: dict[str, Any] = json.loads((ROOT / "openapi" / "openapi.json").read_text("utf-8"))
SYNC_OPS = [(method.upper(), path, op) for path, item in SPEC["paths"].items() if path.startswith("/api/v1/sync/")
            for method, op in item.items()]
PATH_ID = "0" * 32

numbers = st.one_of(st.integers(min_value=-(10**30), max_value=10**30).map(str),
                    st.floats(allow_nan=True, allow_infinity=True).map(repr))
query_value = st.one_of(st.text(max_size=40), numbers)
header_value = st.one_of(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=70), numbers)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, Any], dict[str, str], dict[str, Any]]:
    method, path, op = draw(st.sampled_from(SYNC_OPS))
    query: dict[str, Any] = {}
    headers: dict[str, str] = {}
    for param in op.get("parameters", []):
        if param["in"] == "query" and draw(st.booleans()):
            query[param["name"]] = draw(query_value)
        elif param["in"] == "header" and draw(st.booleans()):
            headers[param["name"]] = draw(header_value).strip()
    return method, path.replace("{", "").replace("}", ""), query, headers, op


def _url(path: str, op: dict[str, Any]) -> str:
    for param in op.get("parameters", []):
        if param["in"] == "path":
            path = path.replace(param["name"], PATH_ID)
    return path


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests())
def test_sync_parameters_get_only_documented_answers(api: Api, request: Any) -> None:
    method, path, query, headers, op = request
    body = {"changes": {}} if path.endswith("/push") else None
    user = "sup_street" if "/conflicts" in path or "/devices" in path else "worker1"
    response = api.as_(user, method, _url(path, op), params=query, headers=headers, json=body)
    status = response.status_code
    documented = {int(s) for s in op["responses"]}
    assert status < 500, (method, path, query, headers, response.text)
    assert status in documented, (method, path, query, headers, status, response.text)
    if status >= 400:
        assert set(response.json()) == {"code", "message", "details"}, response.text
