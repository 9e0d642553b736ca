"""The push: a phone's local changes (WatermelonDB's `changes` object), applied record by record.

docs/sync.md "Push" is the contract. In short:
- one transaction per request; each record is written inside its own savepoint, so a refused record rolls
  back only itself and is reported in `rejected` (and the device's next pull sends the server's truth);
- order: dwellings, residents, visits with their service deliveries, tasks; deletes last;
- a create of an existing id is an update, an update of a missing record a create, a record equal to the
  stored one changes nothing, a delete of a missing record is ignored;
- every record goes through the same services and checks as the REST API (scope, role, writable fields);
- an update of a record the server changed since `last_pulled_at` is merged field by field using
  `_changed` (app/sync/conflicts.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from app.audit import service as audit
from app.core.deps import Actor
from app.core.errors import AppError, Conflict, Forbidden, Unprocessable
from app.people import service as people
from app.people.models import ResidentStatus
from app.people.schemas import ResidentCreate, ResidentUpdate
from app.places import dwellings
from app.places.schemas import DwellingCreate, DwellingUpdate
from app.sync import tracking
from app.sync.conflicts import PushContext, record_if_any
from app.sync.models import RejectionKind, SyncRejection
from app.sync.push_visits import push_visits
from app.sync.wire import MODELS, WireError, from_raw
from app.visits import tasks
from app.visits.models import Task, TaskKind, TaskState
from app.visits.service import seen_records
from app.visits.task_schemas import CancelReason, TaskCancel, TaskCreate

WRITABLE_TABLES = ("dwellings", "residents", "visits", "service_deliveries", "tasks")
READ_ONLY_TABLES = frozenset({"divisions", "service_items", "fp_documents"})
SHORT_ID = re.compile(r"^[A-Za-z0-9]{16,32}$")  # residents, dwellings: WatermelonDB ids or server ids
CLIENT_ID = re.compile(r"^[A-Za-z0-9-]{16,36}$")  # visits, deliveries, tasks: UUIDs allowed too
BOOKKEEPING = frozenset({"id", "created_at", "updated_at", "version"})
RESIDENT_WRITABLE = frozenset(ResidentUpdate.model_fields) - {"version"}
DWELLING_WRITABLE = frozenset({"address", "kind", "lat", "lng"})
# Set by the server when visits arrive or staff act: a phone's own idea of them is ignored.
TASK_DERIVED = frozenset({"completed_at", "completed_by_visit_id", "cancelled_by", "cancel_reason"})


class PushInvalid(Unprocessable):
    code = "push_invalid"
    en = "The body must be WatermelonDB's changes object: {table: {created: [], updated: [], deleted: []}}."
    zh = "请求体必须是 WatermelonDB 的 changes 对象：{表: {created: [], updated: [], deleted: []}}。"


class SyncTableUnknown(Unprocessable):
    code = "sync_table_unknown"
    en = "The push names a table the server does not sync: this app version is not compatible."
    zh = "推送包含服务器不同步的数据表，此应用版本不兼容。"


# --- per-record refusals (reported in `rejected`, never raised out of the push) -----------------------------


class RecordInvalid(Unprocessable):
    code = "record_invalid"
    en = "The record is malformed: a missing or wrongly typed field, or an invalid id."
    zh = "记录格式错误：字段缺失、类型错误或编号无效。"


class ReadOnlyTable(Forbidden):
    code = "read_only_table"
    en = "Phones may not change this table."
    zh = "手机端不能修改此数据表。"


class DeleteNotAllowed(Forbidden):
    code = "delete_not_allowed"
    en = "This record cannot be deleted from a phone."
    zh = "不能在手机端删除此记录。"


class FieldNotWritable(Forbidden):
    code = "field_not_writable"
    en = "The record changes a field your role may not change; nothing of it was applied."
    zh = "记录修改了您的角色无权修改的字段，整条记录未被采纳。"


class TaskKindNotAllowed(Forbidden):
    code = "task_kind_not_allowed"
    en = "Phones may only create follow-up tasks."
    zh = "手机端只能创建跟进任务。"


class ResidentRecordReplaced(Conflict):
    code = "resident_record_replaced"
    en = "This person already had a record in your area; it was registered again and replaces yours."
    zh = "此人在您的辖区已有档案，已重新登记该档案，取代您新建的记录。"
    keep_changes = True


# --- parsing ------------------------------------------------------------------------------------------------


@dataclass
class Incoming:
    table: str
    id: str
    raw: dict[str, Any]
    create: bool  # listed under `created` or `_status: "created"` (sendCreatedAsUpdated)
    changed: frozenset[str] | None  # `_changed` (None: not given)


@dataclass
class Parsed:
    records: dict[str, list[Incoming]] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)
    invalid: list[tuple[str, str]] = field(default_factory=list)  # (table, id or "") malformed records


def id_pattern(table: str) -> re.Pattern[str]:
    return SHORT_ID if table in {"residents", "dwellings"} else CLIENT_ID


def parse(body: Any) -> Parsed:
    """WatermelonDB's `changes` (alone or as {"changes": …}) → records per table. Unknown table → 422."""
    if isinstance(body, dict) and isinstance(body.get("changes"), dict):
        body = body["changes"]
    if not isinstance(body, dict):
        raise PushInvalid()
    unknown = sorted(t for t in body if t not in MODELS)
    if unknown:
        raise SyncTableUnknown({"tables": [t[:40] for t in unknown[:10]]})
    parsed = Parsed()
    for table, changes in body.items():
        if not isinstance(changes, dict) or not set(changes) <= {"created", "updated", "deleted"} or not all(
                isinstance(v, list) for v in changes.values()):
            raise PushInvalid({"table": table})
        pattern, seen = id_pattern(table), set()
        for kind in ("created", "updated"):
            for raw in changes.get(kind, []):
                record_id = raw.get("id") if isinstance(raw, dict) else None
                if not isinstance(record_id, str) or not pattern.match(record_id) or record_id in seen:
                    parsed.invalid.append((table, record_id if isinstance(record_id, str) and
                                           pattern.match(record_id) else ""))
                    continue
                seen.add(record_id)
                status, changed = raw.get("_status"), raw.get("_changed")
                names = frozenset(n for n in changed.split(",") if n) if isinstance(changed, str) else None
                parsed.records.setdefault(table, []).append(
                    Incoming(table, record_id, raw, kind == "created" or status == "created", names))
        for record_id in changes.get("deleted", []):
            if isinstance(record_id, str) and pattern.match(record_id):
                parsed.deleted.setdefault(table, []).append(record_id)
            else:
                parsed.invalid.append((table, ""))
    return parsed


# --- the push -----------------------------------------------------------------------------------------------


@dataclass
class Rejection:
    table: str
    id: str
    code: str
    message: str
    kind: str


@dataclass
class Outcome:
    applied: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    conflicts: int = 0

    def add(self, table: str, n: int = 1) -> None:
        self.applied[table] = self.applied.get(table, 0) + n

    def body(self) -> dict[str, Any]:
        return {"ok": True, "rejected": [{"table": r.table, "id": r.id, "code": r.code, "message": r.message}
                                         for r in self.rejected],
                "applied": self.applied, "unchanged": self.unchanged}

    def counts(self) -> dict[str, Any]:
        return {"applied": self.applied, "unchanged": self.unchanged, "rejected": len(self.rejected),
                "conflicts": self.conflicts}


class Pusher:
    """Applies one push in the request's transaction (`run`)."""

    def __init__(self, session: Session, actor: Actor, ctx: PushContext, lang: str) -> None:
        self.session, self.actor, self.ctx, self.lang = session, actor, ctx, lang
        self.out = Outcome()

    def reject(self, table: str, record_id: str, error: AppError, kind: str) -> None:
        self.refuse(table, record_id, error.code, error.message(self.lang), kind)

    def refuse(self, table: str, record_id: str, code: str, message: str, kind: str) -> None:
        self.out.rejected.append(Rejection(table, record_id, code, message, kind))

    def refuse_invalid(self, table: str, record_id: str, error: ValidationError | WireError | None, kind: str) -> None:
        """A malformed record: a ValidationError whose only failure is a domain rule keeps that rule's code
        (as on the REST API), anything else is record_invalid."""
        if isinstance(error, ValidationError):
            errors = error.errors()
            types = {e["type"] for e in errors}
            if len(types) == 1 and (only := next(iter(types))).startswith("rule."):
                self.refuse(table, record_id, only.removeprefix("rule."), errors[0]["msg"], kind)
                return
        self.reject(table, record_id, RecordInvalid(), kind)

    @contextmanager
    def isolated(self, table: str, record_id: str, kind: str) -> Iterator[None]:
        """A savepoint around one record: an error rolls back only this record (and its queued audit
        events) and is reported; an error that keeps its changes (a transfer request) keeps them."""
        pending = list(self.session.info.get(audit.PENDING, []))
        nested = self.session.begin_nested()
        try:
            yield
        except AppError as error:
            if error.keep_changes:
                nested.commit()
            else:
                nested.rollback()
                self.session.info[audit.PENDING] = pending
            self.reject(table, record_id, error, kind)
        except (ValidationError, WireError) as error:
            nested.rollback()
            self.session.info[audit.PENDING] = pending
            self.refuse_invalid(table, record_id, error, kind)
        except IntegrityError:
            nested.rollback()
            self.session.info[audit.PENDING] = pending
            self.reject(table, record_id, _Concurrent(), kind)
        else:
            nested.commit()

    def run(self, parsed: Parsed) -> Outcome:
        for table, record_id in parsed.invalid:
            self.reject(table, record_id, RecordInvalid(), RejectionKind.update)
        for table in READ_ONLY_TABLES:
            for rec in parsed.records.get(table, []):
                self.reject(table, rec.id, ReadOnlyTable(), _kind(rec))
            for record_id in parsed.deleted.get(table, []):
                self.reject(table, record_id, ReadOnlyTable(), RejectionKind.delete)
        for rec in parsed.records.get("dwellings", []):
            with self.isolated("dwellings", rec.id, _kind(rec)):
                self.dwelling(rec)
        for rec in parsed.records.get("residents", []):
            with self.isolated("residents", rec.id, _kind(rec)):
                self.resident(rec)
        push_visits(self, parsed.records.get("visits", []), parsed.records.get("service_deliveries", []))
        for rec in parsed.records.get("tasks", []):
            with self.isolated("tasks", rec.id, _kind(rec)):
                self.task(rec)
        for table in WRITABLE_TABLES:
            for record_id in parsed.deleted.get(table, []):
                with self.isolated(table, record_id, RejectionKind.delete):
                    self.delete(table, record_id)
        self._remember_rejections()
        return self.out

    def _remember_rejections(self) -> None:
        rows = [SyncRejection(device_row_id=self.ctx.device_row_id, table_name=r.table, record_id=r.id,
                              kind=r.kind, code=r.code) for r in self.out.rejected if r.id]
        if rows:
            self.session.add_all(rows)
            self.session.flush()
        if self.out.rejected:
            tracking.stage(self.session)  # the rejections get this push's fresh sequence number

    # --- helpers ------------------------------------------------------------------------------------------

    def stored(self, table: str, record_id: str) -> Any:
        """The record by id whatever its scope (scope is checked by the service that writes it)."""
        model: type[SQLModel] = MODELS[table]
        ident = model.id  # type: ignore[attr-defined]
        return self.session.execute(select(model).where(ident == record_id)).scalar_one_or_none()

    def update_fields(self, rec: Incoming, record: SQLModel, writable: frozenset[str],
                      ignored: frozenset[str] = frozenset()) -> dict[str, Any]:
        """The writable columns the phone changed (all present ones for a create of an existing id), as
        model values. A changed column outside `writable` with a value other than the stored one refuses
        the whole record (field_not_writable); bookkeeping columns and `ignored` ones are ignored."""
        present = frozenset(rec.raw) & frozenset(MODELS[rec.table].model_fields)
        names = present if rec.create or rec.changed is None else rec.changed & present
        values = from_raw(rec.table, rec.raw, only=sorted(names - BOOKKEEPING - ignored))
        if not rec.create:
            for name, value in values.items():
                if name not in writable and value != getattr(record, name):
                    raise FieldNotWritable({"field": name})
        return {k: v for k, v in values.items() if k in writable}

    def merge(self, rec: Incoming, record: SQLModel, changes: dict[str, Any]) -> None:
        if record_if_any(self.session, self.ctx, rec.table, record, changes, rec.raw):
            self.out.conflicts += 1

    # --- dwellings ----------------------------------------------------------------------------------------

    def dwelling(self, rec: Incoming) -> None:
        existing = self.stored("dwellings", rec.id)
        if existing is None:
            values = from_raw("dwellings", rec.raw, only=("community_id", "grid_id", "address", "kind", "lat", "lng"))
            dwellings.create_dwelling(self.session, self.actor, DwellingCreate(**values), dwelling_id=rec.id)
            self.out.add("dwellings")
            return
        dwelling = dwellings.get_dwelling(self.session, self.actor, rec.id)
        wanted = self.update_fields(rec, dwelling, DWELLING_WRITABLE)
        if ("lat" in wanted) != ("lng" in wanted):  # the pair travels together
            wanted["lat"], wanted["lng"] = wanted.get("lat", dwelling.lat), wanted.get("lng", dwelling.lng)
        body = DwellingUpdate(version=dwelling.version, **wanted)
        changes = {k: v for k, v in body.changes().items() if _value(v) != getattr(dwelling, k)}
        if not changes:
            self.out.unchanged += 1
            return
        if "lat" in changes or "lng" in changes:
            changes["lat"], changes["lng"] = body.lat, body.lng
        self.merge(rec, dwelling, {k: _value(v) for k, v in changes.items()})
        dwellings.update_dwelling(self.session, self.actor, dwelling,
                                  DwellingUpdate(version=dwelling.version, **changes))
        self.out.add("dwellings")

    # --- residents ----------------------------------------------------------------------------------------

    def resident(self, rec: Incoming) -> None:
        existing = self.stored("residents", rec.id)
        if existing is None:
            values = from_raw("residents", rec.raw, only=sorted(RESIDENT_WRITABLE | {
                "id_number", "sex", "birth_date", "dwelling_id"}))
            create = ResidentCreate(**{k: v for k, v in values.items() if v is not None or k == "dwelling_id"})
            resident = people.create_resident(self.session, self.actor, create, resident_id=rec.id)
            if resident.id != rec.id:
                raise ResidentRecordReplaced({"resident_id": resident.id})
            self.out.add("residents")
            return
        resident = people.get_resident(self.session, self.actor, rec.id, for_update=True)
        wanted = self.update_fields(rec, resident, RESIDENT_WRITABLE)
        body = ResidentUpdate(version=resident.version, **wanted)
        proposed = body.model_dump(exclude_unset=True, exclude={"version"})
        if "phone" in proposed:
            proposed["phone"] = people.normalise_phone(proposed["phone"])
        changes = {k: v for k, v in proposed.items() if _value(v) != getattr(resident, k)}
        if not changes:
            self.out.unchanged += 1
            return
        if resident.status != ResidentStatus.registered.value or resident.merged_into_id is not None:
            raise people.ResidentNotActive()
        self.merge(rec, resident, {k: _value(v) for k, v in changes.items()})
        people.update_resident(self.session, resident, ResidentUpdate(version=resident.version, **changes))
        self.out.add("residents")

    # --- tasks --------------------------------------------------------------------------------------------

    def task(self, rec: Incoming) -> None:
        existing = self.stored("tasks", rec.id)
        if existing is None:
            values = from_raw("tasks", rec.raw, only=("resident_id", "kind", "due_date", "reason", "note", "state",
                                                      "cancel_reason"))
            if values.get("kind") != TaskKind.follow_up.value:
                raise TaskKindNotAllowed()
            body = TaskCreate(resident_id=values.get("resident_id"), due_date=values.get("due_date"),
                              reason=values.get("reason"), note=values.get("note"))
            task = tasks.create_follow_up(self.session, self.actor, body, task_id=rec.id)
            if values.get("state") == TaskState.cancelled.value:  # created and cancelled offline
                self.cancel(task, values.get("cancel_reason"))
            self.out.add("tasks")
            return
        task = tasks.get_task(self.session, self.actor, rec.id, for_update=True)
        wanted = self.update_fields(rec, task, frozenset({"state"}), TASK_DERIVED)
        state = wanted.get("state")
        if state in (None, task.state, TaskState.done.value):  # completion is the server's to decide
            self.out.unchanged += 1
            return
        if state != TaskState.cancelled.value:
            raise FieldNotWritable({"field": "state"})
        self.merge(rec, task, {"state": state})
        self.cancel(task, rec.raw.get("cancel_reason"))
        self.out.add("tasks")

    def cancel(self, task: Task, reason: Any) -> None:
        code = reason if reason in CancelReason.__members__ else CancelReason.no_longer_needed.value
        tasks.cancel_task(self.session, self.actor, task.id, TaskCancel(reason=code, version=task.version))

    # --- deletes ------------------------------------------------------------------------------------------

    def delete(self, table: str, record_id: str) -> None:
        """Only the worker's own follow-ups can be deleted (they are cancelled). A record that is missing, or
        outside the caller's scope (its existence is not confirmed), is ignored: the phone no longer has it and
        will not be sent it."""
        stored = self.stored(table, record_id)
        if stored is None or not self._visible(table, stored):
            self.out.unchanged += 1
            return
        if table != "tasks":
            raise DeleteNotAllowed()
        task = tasks.get_task(self.session, self.actor, record_id, for_update=True)
        if task.kind != TaskKind.follow_up.value or task.created_by != self.actor.user_id:
            raise DeleteNotAllowed()
        if task.state == TaskState.cancelled.value:
            self.out.unchanged += 1
            return
        if task.state != TaskState.open.value:
            raise DeleteNotAllowed()
        self.cancel(task, CancelReason.no_longer_needed.value)
        self.out.add(table)

    def _visible(self, table: str, record: Any) -> bool:
        """May the caller see this record (as the REST API decides)?"""
        if table in ("visits", "service_deliveries"):
            return bool(seen_records(self.session, self.actor, [(record.id, record.area_path, record.resident_id)]))
        return self.actor.sees_path(record.area_path)


class _Concurrent(Conflict):
    code = "concurrent_conflict"
    en = "Another change to the same record happened at the same time; sync again."
    zh = "同一记录同时被修改，请重新同步。"


def _kind(rec: Incoming) -> str:
    return RejectionKind.create if rec.create else RejectionKind.update


def _value(v: Any) -> Any:
    """An API value as the model stores it (enums by value)."""
    return getattr(v, "value", v)


__all__ = ["Incoming", "Outcome", "Parsed", "PushInvalid", "Pusher", "SyncTableUnknown", "parse"]
