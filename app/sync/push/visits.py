"""Pushed visits and service deliveries → app/visits/batch.py `record_visits` (the same checks as POST /visits).

A visit is immutable once stored: a pushed visit identical to the stored one changes nothing, a different
one is refused `visit_immutable`. Deliveries travel with their visit (grouped by `visit_id`): a delivery
whose visit is neither in the push nor stored is refused `visit_missing`; one for a stored visit that is not
an identical replay is refused `visit_immutable`. A refused visit refuses its deliveries with the same code.
Columns the server derives (worker, community, area, flags, distance, review, received time) are ignored.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlmodel import col, select

from app.core.errors import AppError, Conflict, Unprocessable
from app.core.inputs import JsonTooDeep, loads_json
from app.core.lean import run
from app.core.queries import chunks
from app.sync.models import RejectionKind
from app.sync.wire import WireError, from_raw
from app.visits.models import ServiceDelivery, Visit
from app.visits.recording import STORED_IDS, VisitItem, record_visits
from app.visits.schemas import VisitCreate
from app.visits.service import seen_records

if TYPE_CHECKING:
    from app.sync.push.schemas import Incoming
    from app.sync.push.service import Pusher

VISIT_COLUMNS = ("resident_id", "dwelling_id", "mode", "purpose", "outcome", "started_at", "ended_at", "notes",
                 "catalog_version", "lat", "lng", "coord_system", "accuracy_m", "provider", "mock_location",
                 "fix_time", "no_coordinates_reason")
DELIVERY_COLUMNS = ("visit_id", "item_code", "quantity", "notes")


class VisitMissing(Unprocessable):
    code = "visit_missing"
    en = "A service delivery must arrive with its visit (or belong to a stored visit)."
    zh = "服务记录必须与其走访记录一同提交（或属于已保存的走访）。"


class VisitImmutable(Conflict):
    code = "visit_immutable"
    en = "A stored visit cannot be changed; record a correction instead."
    zh = "已保存的走访记录不能修改，请提交更正。"


def _codes(raw: Any) -> list[Any]:
    """A JSON-list column (note codes) as the phone holds it: a JSON string, or already a list."""
    if raw is None:
        return []
    if isinstance(raw, list):
        return raw
    if isinstance(raw, str):
        try:
            value = loads_json(raw)  # depth checked first: a phone's string, not our own
        except (ValueError, JsonTooDeep):
            raise WireError("notes") from None
        if isinstance(value, list):
            return value
    raise WireError("notes")


CHECKIN_COLUMNS = ("lat", "lng", "coord_system", "accuracy_m", "provider", "mock_location", "fix_time")
VISIT_FIELDS = ("resident_id", "dwelling_id", "mode", "purpose", "outcome", "started_at", "ended_at", "catalog_version",
                "no_coordinates_reason")


def visit_body(rec: Incoming, deliveries: list[Incoming]) -> VisitCreate:
    """The pushed visit and its deliveries as the body POST /visits takes, validated in one pass."""
    v = from_raw("visits", rec.raw, only=VISIT_COLUMNS)
    body: dict[str, Any] = {k: v[k] for k in VISIT_FIELDS if v.get(k) is not None}
    if v.get("lat") is not None or v.get("lng") is not None:
        body["checkin"] = {k: v[k] for k in CHECKIN_COLUMNS if v.get(k) is not None}
    services = []
    for d in deliveries:
        dv = from_raw("service_deliveries", d.raw, only=DELIVERY_COLUMNS)
        services.append({"id": d.id, "item_code": dv.get("item_code"), "quantity": dv.get("quantity") or 1,
                         "notes": _codes(dv.get("notes"))})
    return VisitCreate.model_validate({"id": rec.id, "notes": _codes(v.get("notes")), "services": services, **body})


def _kind(rec: Incoming) -> str:
    return RejectionKind.create if rec.create else RejectionKind.update


def push_visits(pusher: Pusher, visits: list[Incoming], deliveries: list[Incoming]) -> None:
    session, actor = pusher.session, pusher.actor
    by_visit: dict[str, list[Incoming]] = {}
    for d in deliveries:
        visit_id = d.raw.get("visit_id")
        if not isinstance(visit_id, str) or not visit_id:
            pusher.refuse_invalid("service_deliveries", d.id, None, _kind(d))
            continue
        by_visit.setdefault(visit_id, []).append(d)
    pushed = {v.id for v in visits}
    stored: set[str] = set()
    for chunk in chunks(pushed | set(by_visit)):
        stored.update(visit_id for visit_id, in run(session.connection(), *STORED_IDS(chunk)))
    for visit_id, group in by_visit.items():
        if visit_id not in pushed:
            _orphans(pusher, visit_id in stored, visit_id, group)
    items: list[tuple[Incoming, VisitItem]] = []
    for rec in visits:
        group = by_visit.get(rec.id, [])
        try:
            items.append((rec, VisitItem(visit_body(rec, group))))
        except (ValidationError, WireError) as error:
            pusher.refuse_invalid("visits", rec.id, error, _kind(rec))
            for d in group:
                pusher.refuse_invalid("service_deliveries", d.id, error, _kind(d))
    if not items:
        return
    results = record_visits(session, actor, [item for _, item in items], lang=pusher.lang)
    for (rec, _item), result in zip(items, results, strict=True):
        group = by_visit.get(rec.id, [])
        if result.status == "rejected":
            code = result.code or "record_invalid"
            if code == "visit_id_taken" and rec.id in stored:
                _reject_all(pusher, rec, group, VisitImmutable())
            else:
                pusher.refuse("visits", rec.id, code, result.message or "", _kind(rec))
                for d in group:
                    pusher.refuse("service_deliveries", d.id, code, result.message or "", _kind(d))
        elif result.status == "created":
            pusher.out.add("visits")
            if group:
                pusher.out.add("service_deliveries", len(group))
        else:
            pusher.out.unchanged += 1 + len(group)


def _orphans(pusher: Pusher, visit_stored: bool, visit_id: str, group: list[Incoming]) -> None:
    """Deliveries pushed without their visit: replays of stored ones change nothing, anything else is refused."""
    if not visit_stored:
        for d in group:
            pusher.reject("service_deliveries", d.id, VisitMissing(), _kind(d))
        return
    session, actor = pusher.session, pusher.actor
    stored = [(v, path, resident) for v, path, resident in session.execute(
        select(col(Visit.id), col(Visit.area_path), col(Visit.resident_id)).where(col(Visit.id) == visit_id)).all()]
    if not seen_records(session, actor, stored):  # as if the visit did not exist: its existence never leaks
        for d in group:
            pusher.reject("service_deliveries", d.id, VisitMissing(), _kind(d))
        return
    rows = {d.id: d for d in session.execute(
        select(ServiceDelivery).where(col(ServiceDelivery.id).in_([d.id for d in group]))).scalars()}
    for d in group:
        row = rows.get(d.id)
        try:
            same = row is not None and _same_delivery(row, d)
        except (ValidationError, WireError) as error:
            pusher.refuse_invalid("service_deliveries", d.id, error, _kind(d))
            continue
        if same:
            pusher.out.unchanged += 1
        else:
            pusher.reject("service_deliveries", d.id, VisitImmutable(), _kind(d))


def _same_delivery(row: ServiceDelivery, d: Incoming) -> bool:
    v = from_raw("service_deliveries", d.raw, only=DELIVERY_COLUMNS)
    return (row.visit_id == v.get("visit_id") and row.item_code == v.get("item_code")
            and row.quantity == (v.get("quantity") or 1)
            and sorted(json.loads(row.notes or "[]")) == sorted(_codes(v.get("notes"))))


def _reject_all(pusher: Pusher, rec: Incoming, group: list[Incoming], error: AppError) -> None:
    pusher.reject("visits", rec.id, error, _kind(rec))
    for d in group:
        pusher.reject("service_deliveries", d.id, error, _kind(d))
