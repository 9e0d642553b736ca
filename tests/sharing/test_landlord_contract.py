"""The landlord's side of the published contract: every partner-landlord operation answers partner shapes only,
and no field of any of them, at any depth, is about health, visits, services or the staff-side register."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TAG = "partner-landlord"
# Every field name a landlord can ever receive (pages, their account, dwellings, reports, tenants, errors).
ALLOWED = {
    "items", "total", "limit", "offset", "code", "message", "details", "status",
    "username", "name", "phone_masked", "confirmed", "community_id",
    "id", "address", "kind", "state", "reason", "dwelling_id", "created_at",
    "id_number_masked", "on_date", "reported_on", "late", "tenancy_id",
    "moved_in_on",
    # A tenant list held for a supervisor's approval (202; docs/sharing.md, "Approval queue"): nothing disclosed.
    "request_id", "route", "expires_at", "decided_at", "collected_at",
}
NEVER = ("health", "pregnan", "contracept", "iud", "visit", "service", "birth", "fp_", "marital", "hukou",
         "resident_id", "key_person", "id_number", "phone")


def _fields(schema: Any, spec: dict[str, Any], seen: set[str]) -> set[str]:
    if isinstance(schema, list):
        return {name for item in schema for name in _fields(item, spec, seen)}
    if not isinstance(schema, dict):
        return set()
    names: set[str] = set()
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in seen:
        seen.add(ref)
        names |= _fields(spec["components"]["schemas"][ref.rsplit("/", 1)[1]], spec, seen)
    names |= set(schema.get("properties", {}))
    for key, value in schema.items():
        if key in ("properties", "items", "anyOf", "allOf", "oneOf", "additionalProperties"):
            values = value.values() if key == "properties" else [value]
            for v in values:
                names |= _fields(v, spec, seen)
    return names


def test_partner_landlord_responses_hold_only_landlord_fields() -> None:
    spec = json.loads((ROOT / "openapi" / "openapi.json").read_text())
    operations = [op for ops in spec["paths"].values() for op in ops.values() if TAG in op.get("tags", [])]
    assert len(operations) >= 9
    for op in operations:
        assert op["tags"] == [TAG]
        for response in op["responses"].values():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            fields = _fields(schema, spec, set())
            assert fields <= ALLOWED, (op["operationId"], fields - ALLOWED)
            masked = {f for f in fields if not f.endswith("_masked")}
            assert not [f for f in masked for word in NEVER if word in f], (op["operationId"], masked)
