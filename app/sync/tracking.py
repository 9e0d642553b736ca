"""Change tracking for sync: every write to a synced table leaves `sync_log` rows, stamped at commit.

ORM writes are tracked by a flush listener (no service can forget, as with the audit log): a new or
changed record logs `upsert` with its area and the changed column names; a deleted one `delete`; a record
whose `area_path` changed logs `exit` under the *old* area and `upsert` under the new one, so the worker
who lost it gets a deletion and the one who gained it the record. Rows are inserted right after the flush
with `seq = NULL` (a savepoint rollback takes them back with the data).

`stamp` runs inside `audit.seal_pending`, under the chain lock held until commit: it increments the
single `sync_counter` row and gives this transaction's staged rows that number. Transactions therefore
become visible in sequence order and a pull's cursor (the counter in its snapshot) never skips a write.

Bulk statements bypass the listener and call `mark_rows` / `mark_area_move` themselves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Table,
    event,
    func,
    insert,
    inspect,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, SQLModel

from app.audit import service as audit
from app.sync.models import SyncLog, SyncOp, SyncRejection

STAGED = "sync_staged"
WRITER = "sync_writer"  # session.info key: the device row whose push is being applied
# Log rows whose sequence number is only known at commit: most are kept aside and inserted by `stamp` with
# it; those that must be read before a later statement changes their rows (exits, moves) are inserted at
# once with seq NULL (STAGED) and numbered by one UPDATE at commit.
DEFERRED_ROWS = "sync_deferred_rows"
DEFERRED_SELECTS = "sync_deferred_selects"
LOG_COLUMNS = ["seq", "table_name", "record_id", "area_path", "district_code", "op", "fields", "device_row_id"]
FIELDS_MAX = 500
# Tables a phone receives. Their rows carry area_path/district_code, except the three handled below.
SYNCED_TABLES = frozenset({
    "divisions", "dwellings", "residents", "fp_documents", "visits", "service_deliveries", "tasks",
    "service_items",
})
EVERYONE = "/"  # area of city-wide reference data (the catalogue): every scope starts with "/"


def _log_table() -> Table:
    return SyncLog.__table__  # type: ignore[attr-defined]


def _area(table: str, values: dict[str, Any]) -> tuple[str, str | None] | None:
    """(area_path, district_code) of a record from its column values; None: resolve via its resident."""
    if table == "service_items":
        return EVERYONE, None
    if table == "divisions":
        return values.get("path") or EVERYONE, values.get("district_code")
    if table == "fp_documents":
        return None
    return values.get("area_path") or EVERYONE, values.get("district_code")


def _fields(names: list[str] | None) -> str | None:
    """Comma-joined changed columns; None means every column (a create, a delete, or too many to list)."""
    if names is None:
        return None
    joined = ",".join(sorted(names))
    return joined if len(joined) <= FIELDS_MAX else None


def _old(state: Any, key: str) -> Any:
    """The value a column had before this flush (the current one when unchanged)."""
    history = state.attrs[key].history
    if history.deleted:
        return history.deleted[0]
    return state.attrs[key].value


@event.listens_for(OrmSession, "before_flush")
def _collect(session: OrmSession, _ctx: Any, _instances: Any) -> None:
    if not (session.new or session.dirty or session.deleted):
        return
    entries: list[dict[str, Any]] = session.info.setdefault("sync_entries", [])
    for obj, kind in (
        *((o, "create") for o in session.new),
        *((o, "update") for o in session.dirty),
        *((o, "delete") for o in session.deleted),
    ):
        table = getattr(obj, "__tablename__", None)
        if not isinstance(obj, SQLModel) or table not in SYNCED_TABLES:
            continue
        state = inspect(obj)
        values = {a.key: a.value for a in state.attrs}
        changed: list[str] | None = None
        if kind == "update":
            changed = [a.key for a in state.attrs if a.history.has_changes()]
            if not changed:
                continue
        area_key = "path" if table == "divisions" else "area_path"
        base = {"table": table, "id": str(values["id"]), "resident_id": values.get("resident_id")}
        if kind == "delete":
            old = {**values, area_key: _old(state, area_key), "district_code": _old(state, "district_code")} \
                if area_key in values else values
            entries.append({**base, "op": SyncOp.delete, "area": _area(table, old), "fields": None})
            continue
        if changed is not None and area_key in changed:
            old = {**values, area_key: _old(state, area_key), "district_code": _old(state, "district_code")}
            if not state.attrs[area_key].history.deleted:
                # Set while expired (unloaded): the session never knew the old value, the database still has it.
                t = obj.__table__  # type: ignore[attr-defined]
                stored = session.connection().execute(
                    select(t.c[area_key], t.c.district_code).where(t.c.id == values["id"])).first()
                if stored is not None:
                    old = {**values, area_key: stored[0], "district_code": stored[1]}
            entries.append({**base, "op": SyncOp.exit, "area": _area(table, old), "fields": None})
            if table == "residents":
                entries.append({**base, "op": "resident_move", "area": _area(table, old), "fields": None})
        entries.append({**base, "op": SyncOp.upsert, "area": _area(table, values), "fields": _fields(changed)})


@event.listens_for(OrmSession, "after_flush")
def _write(session: OrmSession, _ctx: Any) -> None:
    entries: list[dict[str, Any]] = session.info.pop("sync_entries", [])
    if not entries:
        return
    plain = []
    for e in entries:
        if e["op"] == "resident_move":
            _log_fp_documents_move(session, e["id"], e["area"])
        elif e["area"] is None:  # fp_documents: the resident's area (its row is flushed already)
            _log_via_resident(session, e)
        else:
            area, district = e["area"]
            plain.append({"seq": None, "table_name": e["table"], "record_id": e["id"], "area_path": area,
                          "district_code": district, "op": str(e["op"]), "fields": e["fields"],
                          "device_row_id": session.info.get(WRITER)})
    if plain:
        session.info.setdefault(DEFERRED_ROWS, []).extend(plain)
    session.info[audit.SEAL_FLAG] = True
    if any(e["op"] == "resident_move" or e["area"] is None for e in entries):
        session.info[STAGED] = True  # rows inserted above with seq NULL


def _log_via_resident(session: OrmSession, e: dict[str, Any]) -> None:
    from app.people.models import Resident

    residents = Resident.__table__  # type: ignore[attr-defined]
    log = _log_table()
    source = select(
        literal(None), literal(e["table"]), literal(e["id"]), residents.c.area_path, residents.c.district_code,
        literal(str(e["op"])), literal(e["fields"]),
    ).where(residents.c.id == e["resident_id"])
    session.connection().execute(
        insert(log).from_select(["seq", "table_name", "record_id", "area_path", "district_code", "op", "fields"],
                                source)
    )


def _log_fp_documents_move(session: OrmSession, resident_id: str, old: tuple[str, str | None] | None) -> None:
    """A resident moved: their 婚育证明 documents leave the old area and enter the new one."""
    from app.people.models import FpDocument, Resident

    if old is None:
        return
    docs = FpDocument.__table__  # type: ignore[attr-defined]
    residents = Resident.__table__  # type: ignore[attr-defined]
    log = _log_table()
    columns = ["seq", "table_name", "record_id", "area_path", "district_code", "op", "fields"]
    conn = session.connection()
    conn.execute(insert(log).from_select(columns, select(
        literal(None), literal("fp_documents"), docs.c.id, literal(old[0]), literal(old[1]), literal("exit"),
        literal(None),
    ).where(docs.c.resident_id == resident_id)))
    conn.execute(insert(log).from_select(columns, select(
        literal(None), literal("fp_documents"), docs.c.id, residents.c.area_path, residents.c.district_code,
        literal("upsert"), literal(None),
    ).join_from(docs, residents, docs.c.resident_id == residents.c.id).where(docs.c.resident_id == resident_id)))


# --- bulk statements ---------------------------------------------------------------------------------

def mark_rows(session: Session, table: Table, where: ColumnElement[bool], op: str = SyncOp.upsert,
              fields: list[str] | None = None) -> None:
    """Log the rows of `table` matching `where` (call after a bulk UPDATE/INSERT; before a bulk DELETE with
    op="delete"), with their current area. INSERT … SELECT: no rows are loaded."""
    name = table.name
    if name not in SYNCED_TABLES:
        raise ValueError(f"{name} is not a synced table")
    writer = literal(session.info.get(WRITER), type_=String)
    if name == "service_items":
        stmt = select(literal(None), literal(name), table.c.id, literal(EVERYONE), literal(None), literal(str(op)),
                      literal(_fields(fields)), writer).where(where)
    elif name == "fp_documents":
        from app.people.models import Resident

        residents = Resident.__table__  # type: ignore[attr-defined]
        stmt = select(literal(None), literal(name), table.c.id, residents.c.area_path, residents.c.district_code,
                      literal(str(op)), literal(_fields(fields)), writer
                      ).join_from(table, residents, table.c.resident_id == residents.c.id).where(where)
    else:
        path = table.c.path if name == "divisions" else table.c.area_path
        stmt = select(literal(None), literal(name), table.c.id, path, table.c.district_code, literal(str(op)),
                      literal(_fields(fields)), writer).where(where)
    if op == SyncOp.upsert:
        # The rows' state at commit is what phones must get: select them then, numbered directly.
        session.info.setdefault(DEFERRED_SELECTS, []).append(stmt)
        session.info[audit.SEAL_FLAG] = True
        return
    session.execute(insert(_log_table()).from_select(LOG_COLUMNS, stmt))
    _flag(session)


def mark_area_move(session: Session, table: Table, old_prefix: str, new_prefix: str) -> None:
    """Log a bulk move of `table`'s rows from under `old_prefix` to under `new_prefix` (call after the
    UPDATE that rewrote their paths; `new_prefix` is the moved subtree's new root, where nothing else lies):
    an `exit` under the old path and an `upsert` under the new one (for residents, their documents too)."""
    name = table.name
    path = table.c.path if name == "divisions" else table.c.area_path
    if name not in SYNCED_TABLES or name in {"service_items", "fp_documents"}:
        raise ValueError(f"{name} has no area of its own")
    moved = func.substr(path, 1, len(new_prefix)) == new_prefix
    old_path = literal(old_prefix) + func.substr(path, len(new_prefix) + 1)
    columns = ["seq", "table_name", "record_id", "area_path", "district_code", "op", "fields"]
    session.execute(insert(_log_table()).from_select(columns, select(
        literal(None), literal(name), table.c.id, old_path, table.c.district_code, literal("exit"), literal(None),
    ).where(moved)))
    _flag(session)
    mark_rows(session, table, moved, SyncOp.upsert, [path.name])
    if name == "residents":  # their documents move with them
        from app.people.models import FpDocument

        docs = FpDocument.__table__  # type: ignore[attr-defined]
        session.execute(insert(_log_table()).from_select(columns, select(
            literal(None), literal("fp_documents"), docs.c.id, old_path, table.c.district_code, literal("exit"),
            literal(None),
        ).join_from(docs, table, docs.c.resident_id == table.c.id).where(moved)))
        mark_rows(session, docs, docs.c.resident_id.in_(select(table.c.id).where(moved)))


def _flag(session: Session) -> None:
    session.info[STAGED] = True
    session.info[audit.SEAL_FLAG] = True


# --- stamping at commit --------------------------------------------------------------------------------

def stamp(session: Session) -> None:
    """Give this transaction's log rows the next sequence number (under the chain lock)."""
    staged = session.info.pop(STAGED, False)
    rows: list[dict[str, Any]] = session.info.pop(DEFERRED_ROWS, [])
    selects: list[Any] = session.info.pop(DEFERRED_SELECTS, [])
    if not (staged or rows or selects):
        return
    table = SyncLog.__table__  # type: ignore[attr-defined]
    seq = session.execute(text("UPDATE sync_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq")).scalar_one()
    if rows:
        session.execute(insert(table), [{**row, "seq": seq} for row in rows])
    for stmt in selects:
        numbered = stmt.with_only_columns(literal(seq, type_=BigInteger), *list(stmt.selected_columns)[1:])
        session.execute(insert(table).from_select(LOG_COLUMNS, numbered))
    if staged:
        session.execute(update(table).where(table.c.seq.is_(None)).values(seq=seq))
    rejections = SyncRejection.__table__  # type: ignore[attr-defined]
    session.execute(update(rejections).where(rejections.c.seq_at.is_(None)).values(seq_at=seq))


def stage(session: Session) -> None:
    """Make the commit take a sequence number even with no change logged (a push that rejected records)."""
    _flag(session)


if stamp not in audit.SEAL_HOOKS:
    audit.SEAL_HOOKS.append(stamp)
