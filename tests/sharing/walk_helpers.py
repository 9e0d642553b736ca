"""What the partner walk (tests/sharing/test_partner_walk.py) checks in every answer a partner receives: the keys
its kind may receive (the profile's fields plus the documented envelope), never a health, visit or service field,
and never a record of anyone outside its jurisdiction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine

from tests.db import rows

V1 = "/api/v1"
PARTNER = V1 + "/partner"
TOKEN_KEYS = {"access_token", "token_type", "expires_in", "scope"}
DISCLOSURE_KEYS = {"disclosure", "profile_version", "legal_basis", "purpose", "retention_days"}
FEED_KEYS = {"items", "cursor", "has_more", "event", "person"} | DISCLOSURE_KEYS
PAGE_KEYS = {"items", "total", "limit", "offset"}
# A pull held for a supervisor's approval (202, its state) and an approved one's collection (docs/sharing.md).
HELD_KEYS = {"request_id", "state", "route", "created_at", "expires_at", "decided_at", "collected_at", "answer"}
# The police upload's report: counts and codes only.
UPLOAD_KEYS = {"reference", "dry_run", "replayed", "format", "rows", "counts", "matched", "new", "departed",
               "conflicting", "refused", "results", "row", "outcome", "errors", "field", "code", "ignored_columns",
               "outcomes_withheld"}
# docs/sharing.md, "Assistance requests": a fixed shape, not narrowed by the profile.
ASSISTANCE_KEYS = {"id", "direction", "state", "topic", "urgent", "partner_reference", "subject_name",
                   "subject_id_number", "sent_on", "due_on", "answered_on", "finding", "fp_certificate_status",
                   "version"}
# Every key a landlord can receive (their account, dwellings, reports, tenants; pages). The tenant list's fields
# are fixed (docs/sharing.md, landlords' "Not built yet"), so the landlord profile does not narrow them.
LANDLORD_KEYS = PAGE_KEYS | {
    "status", "username", "name", "phone_masked", "confirmed", "community_id", "id", "address", "kind", "state",
    "reason", "dwelling_id", "created_at", "id_number_masked", "on_date", "reported_on", "late", "tenancy_id",
    "moved_in_on"}
# The top level of an error answer: the API's shape, or the token endpoint's (RFC 6749 §5.2).
ERROR_KEYS = {"code", "message", "details", "error", "error_description"}
# domain.md "Never build" and "Partners and what they may see": no partner ever receives these, at any depth.
NEVER = {"contraception", "contraception_since", "pregnancy", "pregnancy_noted_on", "children", "health",
         "visits", "visit", "services", "deliveries", "employer", "occupation", "marital_status", "notes",
         "key_person", "area_path", "resident_id"}
NEVER_IN_KEYS = ("health", "pregnan", "contracept", "visit", "service", "deliver", "marital", "employer",
                 "occupation", "key_person", "area_path")
# Values of the health records every walked resident has (tests/people/rec_helpers.health_body).
NEVER_VALUES = ("iud", "not_pregnant", "contraception")


# The fields of each field group a kind may be given (docs/sharing.md, "Disclosure profiles"; domain.md's table),
# written out here rather than taken from app/sharing/profiles/rules.py, so a change there has to show up here.
GROUPS = {
    "police": {
        "identity": {"id", "name", "sex", "birth_date", "id_number", "hukou_code", "hukou_address"},
        "contact": {"phone"},
        "residence": {"dwelling_address", "arrival_date", "status", "left_on", "residence_permit_no"},
    },
    "outflow_city": {
        "identity": {"id", "name", "sex", "birth_date", "id_number", "hukou_code"},
        "residence": {"residence_district_code", "residence_community", "arrival_date", "status", "left_on"},
        "verification": {"verification_status"},
        "fp_document": {"fp_document_status"},
    },
}


def allowed_keys(kind: str, groups: list[str]) -> set[str]:
    """What a partner of `kind` may receive while its profile has `groups`."""
    fields = {f for g in groups for f in GROUPS.get(kind, {}).get(g, set())}
    if kind == "police":
        return fields | FEED_KEYS | UPLOAD_KEYS | TOKEN_KEYS | HELD_KEYS
    if kind == "outflow_city":
        month = {"verification_month"} if "verification" in groups else set()
        return fields | month | FEED_KEYS | PAGE_KEYS | ASSISTANCE_KEYS | TOKEN_KEYS | HELD_KEYS
    return LANDLORD_KEYS | HELD_KEYS


def objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object of a document, at any depth."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from objects(v)
    elif isinstance(value, list):
        for v in value:
            yield from objects(v)


def check(response: Any, allowed: set[str], outside: set[str], echo: set[str]) -> set[str]:
    """Fails on a key outside `allowed` (2xx) or the error shape (else), on a never-field at any depth, and on any
    of the `outside` values (record ids, ID numbers, names) anywhere in the body, but those the partner itself
    sent (`echo`). Returns every key seen."""
    body = response.json()
    text = json.dumps(body, ensure_ascii=False)
    where = f"{response.request.method} {response.request.url.path} {response.status_code}: {text[:300]}"
    leaked = sorted(v for v in outside - echo if v in text)
    assert not leaked, f"outside records {leaked} in {where}"
    assert not [v for v in NEVER_VALUES if v in text], where
    seen: set[str] = set()
    for obj in objects(body):
        keys = set(obj)
        seen |= keys
        assert not keys & NEVER, (keys & NEVER, where)
        assert not [k for k in keys for word in NEVER_IN_KEYS if word in k], (keys, where)
    if 200 <= response.status_code < 300:
        assert seen <= allowed, (sorted(seen - allowed), where)
    else:
        assert isinstance(body, dict) and set(body) <= ERROR_KEYS, where
    return seen


def residents(engine: Engine) -> list[dict[str, Any]]:
    return rows(engine, "SELECT id, id_number, name, area_path, hukou_code FROM residents")


def outside_police(engine: Engine, paths: list[str]) -> set[str]:
    """Ids and ID numbers of every resident outside the divisions at `paths` (a station's jurisdiction)."""
    return {str(v) for r in residents(engine) if not any(r["area_path"].startswith(p) for p in paths)
            for v in (r["id"], r["id_number"]) if v}


def outside_outflow(engine: Engine, prefix: str) -> set[str]:
    """Ids and ID numbers of every resident whose 户籍地 does not start with `prefix`."""
    return {str(v) for r in residents(engine) if not r["hukou_code"].startswith(prefix)
            for v in (r["id"], r["id_number"]) if v}


def every_resident(engine: Engine) -> set[str]:
    """A landlord never receives a resident's record id or full ID number."""
    return {str(v) for r in residents(engine) for v in (r["id"], r["id_number"]) if v}
