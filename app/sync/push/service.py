"""The push: a phone's local changes (WatermelonDB's `changes` object), applied record by record.

docs/sync.md "Push" is the contract. In short:
- one transaction per request; a refused record rolls back only itself (its rows, change-log entries and
  audit events: a ledger savepoint) and is reported in `rejected` (the device's next pull sends the server's
  truth). Records are applied in groups of GROUP under one savepoint; a group that meets a refusal is rolled
  back and split in halves until the refused record stands alone. So a push costs a savepoint per group, not
  per record (PostgreSQL keeps a lock per committed subtransaction until the end: one per record took the
  lock table down), and a refused record costs a few re-applications of its neighbours;
- order: dwellings, residents, visits with their service deliveries, tasks, verifications; deletes last;
- a create of an existing id is an update, an update of a missing record a create, a record equal to the
  stored one changes nothing, a delete of a missing record is ignored;
- every record goes through the same services and checks as the REST API (scope, role, writable fields);
- an update of a record the server changed since `last_pulled_at` is merged field by field using
  `_changed` (app/sync/conflicts.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from app.core.actor import Actor
from app.core.errors import AppError
from app.core.types import city_date
from app.cycle.models import Task, TaskKind, TaskState
from app.cycle.tasks import service as tasks
from app.cycle.tasks.schemas import CancelReason, TaskCancel, TaskCreate
from app.ledger import changes as change_log
from app.ledger.service import savepoint
from app.people.models import ResidentStatus
from app.people.register import errors as register_errors
from app.people.register import service as people
from app.people.register.schemas import ResidentCreate, ResidentUpdate
from app.places import dwellings
from app.places.schemas import DwellingCreate, DwellingUpdate
from app.sync.conflicts import PushContext, record_if_any
from app.sync.models import RejectionKind, SyncRejection
from app.sync.push.errors import (
    ConcurrentChange,
    DeleteNotAllowed,
    FieldNotWritable,
    IdNotAccepted,
    ReadOnlyTable,
    RecordInvalid,
    ResidentRecordReplaced,
    TaskKindNotAllowed,
)
from app.sync.push.schemas import Incoming, Outcome, Parsed, Rejection
from app.sync.push.verifications import push_verification
from app.sync.push.visits import push_visits
from app.sync.wire import MODELS, WireError, from_raw
from app.visits.service import seen_records

WRITABLE_TABLES = ("dwellings", "residents", "visits", "service_deliveries", "tasks", "verifications")
READ_ONLY_TABLES = frozenset({"divisions", "service_items", "fp_documents", "periods"})
BOOKKEEPING = frozenset({"id", "created_at", "updated_at", "version"})
RESIDENT_WRITABLE = frozenset(ResidentUpdate.model_fields) - {"version"}
DWELLING_WRITABLE = frozenset({"address", "kind", "lat", "lng"})
# Set by the server when visits arrive or staff act: a phone's own idea of them is ignored.
TASK_DERIVED = frozenset({"completed_at", "completed_by_visit_id", "cancelled_by", "cancel_reason"})
GROUP = 64  # records under one savepoint (see the module docstring)
REFUSALS = (AppError, ValidationError, WireError, IntegrityError)


@dataclass(frozen=True)
class Item:
    """One record's work: what to apply, and how to name it if it is refused."""

    table: str
    id: str
    kind: str
    apply: Callable[[], None]


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

    def apply(self, items: list[Item]) -> None:
        """Apply the records in order, in groups under one savepoint each (see the module docstring)."""
        for start in range(0, len(items), GROUP):
            self._group(items[start:start + GROUP])

    def _group(self, items: list[Item]) -> None:
        if len(items) == 1:
            self._one(items[0])
            return
        mark = self.out.mark()
        try:
            with savepoint(self.session):
                for item in items:
                    item.apply()
        except REFUSALS:
            self.out.restore(mark)
            half = len(items) // 2
            self._group(items[:half])
            self._group(items[half:])

    def _one(self, item: Item) -> None:
        """One record alone: a refusal rolls back only it (an error that keeps its changes, such as a transfer
        request, keeps them) and is reported."""
        mark = self.out.mark()
        try:
            with savepoint(self.session, keep=lambda exc: isinstance(exc, AppError) and exc.keep_changes):
                item.apply()
        except AppError as error:
            self.out.restore(mark)
            self.reject(item.table, item.id, error, item.kind)
        except (ValidationError, WireError) as error:
            self.out.restore(mark)
            self.refuse_invalid(item.table, item.id, error, item.kind)
        except IntegrityError:
            self.out.restore(mark)
            self.reject(item.table, item.id, ConcurrentChange(), item.kind)

    def run(self, parsed: Parsed) -> Outcome:
        for table, record_id, code in parsed.invalid:
            self.reject(table, record_id, IdNotAccepted() if code == IdNotAccepted.code else RecordInvalid(),
                        RejectionKind.update)
        for table in READ_ONLY_TABLES:
            for rec in parsed.records.get(table, []):
                self.reject(table, rec.id, ReadOnlyTable(), _kind(rec))
            for record_id in parsed.deleted.get(table, []):
                self.reject(table, record_id, ReadOnlyTable(), RejectionKind.delete)
        self.apply(self._items(parsed, "dwellings", self.dwelling))
        self.apply(self._items(parsed, "residents", self.resident))
        push_visits(self, parsed.records.get("visits", []), parsed.records.get("service_deliveries", []))
        self.apply(self._items(parsed, "tasks", self.task))
        self.apply(self._items(parsed, "verifications", lambda rec: push_verification(self, rec)))
        self.apply([Item(table, record_id, RejectionKind.delete, _bind(self.delete, table, record_id))
                    for table in WRITABLE_TABLES for record_id in parsed.deleted.get(table, [])])
        self._remember_rejections()
        return self.out

    @staticmethod
    def _items(parsed: Parsed, table: str, handler: Callable[[Incoming], None]) -> list[Item]:
        return [Item(table, rec.id, _kind(rec), _bind(handler, rec)) for rec in parsed.records.get(table, [])]

    def _remember_rejections(self) -> None:
        rows = [SyncRejection(device_row_id=self.ctx.device_row_id, table_name=r.table, record_id=r.id,
                              kind=r.kind, code=r.code) for r in self.out.rejected if r.id]
        if rows:
            self.session.add_all(rows)
            self.session.flush()
        if self.out.rejected:
            change_log.stage(self.session)  # the rejections get this push's fresh sequence number

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
            resident = people.create_resident(self.session, self.actor, create, resident_id=rec.id,
                                              registered_on=_registered_on(rec))
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
            raise register_errors.ResidentNotActive()
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


def _bind(handler: Callable[..., None], *args: Any) -> Callable[[], None]:
    return lambda: handler(*args)


def _kind(rec: Incoming) -> str:
    return RejectionKind.create if rec.create else RejectionKind.update


def _value(v: Any) -> Any:
    """An API value as the model stores it (enums by value)."""
    return getattr(v, "value", v)


def _registered_on(rec: Incoming) -> date | None:
    """The city date the phone registered a resident (its `created_at`; the server keeps its own), which starts
    their new-arrival visit; None when it sent none usable (then it is today)."""
    try:
        at = from_raw("residents", rec.raw, only=["created_at"]).get("created_at")
    except WireError:
        return None
    return city_date(at) if isinstance(at, datetime) else None
