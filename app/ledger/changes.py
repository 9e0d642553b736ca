"""The sync change log: every write to a synced table leaves `sync_log` rows, stamped at commit.

Which tables are synced, and where their rows lie, the tables say themselves in their table info, so this
module imports no domain:
- `info={"sync": True}`: synced; the row's area is its `area_path` column (or the column named by
  `info["area"]`, e.g. a division's `path`) and its `district_code`;
- `info={"sync": {"everyone": True}}`: city-wide reference data (the catalogue), logged under area `/`;
- `info={"sync": {"via": ("residents", "resident_id")}}`: no area of its own; the row lies where the row it
  points to lies, and moves with it (a resident's 婚育证明 documents).

ORM writes are tracked by the ledger's flush listeners (`collect` before the flush, `write` after it), so no
service can forget: a new or changed record logs `upsert` with its area and the changed column names; a
deleted one `delete`; a record whose area changed logs `exit` under the *old* area and `upsert` under the new
one, so the worker who lost it gets a deletion and the one who gained it the record — and the rows that lie
"via" it move along. Bulk statements bypass the listeners and call `mark_rows` / `mark_area_move`.

Rows wait on the unit of work's ledger (or, where they must be read before a later statement changes their
rows, are inserted at once with `seq = NULL`, which a savepoint rollback takes back with the data). `stamp`
runs at commit under the chain lock: it increments the single `sync_counter` row and gives this
transaction's rows that number, so transactions become visible in sequence order and a pull's cursor never
skips a write. Tables with `info={"stamp": "<column>"}` get the number too, in that column where it is NULL
(a push's rejections).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    String,
    Table,
    Update,
    bindparam,
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

from app.core.bulk import BulkWriter
from app.core.lean import Lean, run
from app.core.queries import ByKey
from app.ledger.models import SyncLog, SyncOp
from app.ledger.state import Ledger, ledger_of

LOG_COLUMNS = ["seq", "table_name", "record_id", "area_path", "district_code", "op", "fields", "device_row_id"]
FIELDS_MAX = 500
EVERYONE = "/"  # area of city-wide reference data (the catalogue): every scope starts with "/"
RESIDENT_MOVE = "carry"  # internal: a row whose area changed carries the rows that lie "via" it


def _log_table() -> Table:
    return SyncLog.__table__  # type: ignore[attr-defined]


# --- what the tables declare ---------------------------------------------------------------------------------


@cache
def synced() -> dict[str, Table]:
    """The synced tables by name (from the complete metadata: call after every model is imported)."""
    return {t.name: t for t in SQLModel.metadata.sorted_tables if "sync" in t.info}


def is_synced(name: str) -> bool:
    return name in synced()


def area_column(table: Table) -> str:
    return str(table.info.get("area", "area_path"))


def _spec(table: Table) -> dict[str, Any]:
    """A synced table's `info["sync"]`: True (the defaults) or a dict of options."""
    spec = table.info["sync"]
    return spec if isinstance(spec, dict) else {}


def _via(table: Table) -> tuple[Table, str] | None:
    via = _spec(table).get("via")
    return (synced()[via[0]], via[1]) if via else None


def _everyone(table: Table) -> bool:
    return bool(_spec(table).get("everyone"))


def dependents(table: Table) -> list[tuple[Table, str]]:
    """Synced tables whose rows lie where a row of `table` lies: (table, its column pointing at `table`)."""
    found = []
    for other in synced().values():
        via = _spec(other).get("via")
        if via and via[0] == table.name:
            found.append((other, via[1]))
    return found


def carried(table: Table, where: ColumnElement[bool]) -> list[tuple[Table, ColumnElement[bool]]]:
    """The synced rows a bulk area change of `table`'s rows matching `where` moves: its own, and the rows of
    the tables that lie "via" it (a resident's documents), so phones see them leave and arrive."""
    if not is_synced(table.name):
        return []
    rows = [(table, where)]
    for dependent, key in dependents(table):
        rows.append((dependent, dependent.c[key].in_(select(table.c.id).where(where))))
    return rows


def _area(table: Table, values: dict[str, Any]) -> tuple[str, str | None] | None:
    """(area_path, district_code) of a record from its column values; None: resolve via its parent row."""
    if _everyone(table):
        return EVERYONE, None
    if _via(table) is not None:
        return None
    return values.get(area_column(table)) or EVERYONE, values.get("district_code")


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


# --- ORM writes (the ledger's flush listeners) ----------------------------------------------------------------


def collect(session: OrmSession, ledger: Ledger) -> None:
    """Before a flush: note every synced write about to be flushed."""
    for obj, kind in (
        *((o, "create") for o in session.new),
        *((o, "update") for o in session.dirty),
        *((o, "delete") for o in session.deleted),
    ):
        table = getattr(obj, "__table__", None)
        if table is not None and "stamp" in table.info:
            ledger.staged = True  # numbered at commit (`stamp`)
        if not isinstance(obj, SQLModel) or table is None or not is_synced(table.name):
            continue
        state = inspect(obj)
        values = {a.key: a.value for a in state.attrs}
        changed: list[str] | None = None
        if kind == "update":
            changed = [a.key for a in state.attrs if a.history.has_changes()]
            if not changed:
                continue
        area_key = area_column(table)
        via = _via(table)
        base = {"table": table, "id": str(values["id"]), "parent_id": values.get(via[1]) if via else None}
        if kind == "delete":
            old = _old_area(table, state, values) if area_key in values else values
            ledger.flushing.append({**base, "op": SyncOp.delete, "area": _area(table, old), "fields": None})
            continue
        if changed is not None and area_key in changed:
            old = _stored_area(session, table, state, values)
            ledger.flushing.append({**base, "op": SyncOp.exit, "area": _area(table, old), "fields": None})
            if dependents(table):
                ledger.flushing.append({**base, "op": RESIDENT_MOVE, "area": _area(table, old), "fields": None})
        ledger.flushing.append({**base, "op": SyncOp.upsert, "area": _area(table, values),
                                "fields": _fields(changed)})


def _old_area(table: Table, state: Any, values: dict[str, Any]) -> dict[str, Any]:
    key = area_column(table)
    return {**values, key: _old(state, key), "district_code": _old(state, "district_code")}


def _stored_area(session: OrmSession, table: Table, state: Any, values: dict[str, Any]) -> dict[str, Any]:
    """The area before this flush; read from the database when it was set while the row was expired (the
    session never knew the old value)."""
    key = area_column(table)
    if state.attrs[key].history.deleted:
        return _old_area(table, state, values)
    stored = session.connection().execute(
        select(table.c[key], table.c.district_code).where(table.c.id == values["id"])).first()
    return {**values, key: stored[0], "district_code": stored[1]} if stored is not None else values


def write(session: OrmSession, ledger: Ledger) -> None:
    """After a flush: log what `collect` noted (most rows wait on the ledger for the sequence number)."""
    entries, ledger.flushing = ledger.flushing, []
    for e in entries:
        if e["op"] == RESIDENT_MOVE:
            _log_dependents_move(session, e["table"], e["id"], e["area"])
            ledger.staged = True
        elif e["area"] is None:  # lies via its parent: the parent's area (its row is flushed already)
            _log_via_parent(session, e)
            ledger.staged = True
        else:
            area, district = e["area"]
            ledger.rows.append((e["table"].name, e["id"], area, district, str(e["op"]), e["fields"], ledger.writer))


def _log_via_parent(session: OrmSession, e: dict[str, Any]) -> None:
    parent, _key = _via(e["table"])  # type: ignore[misc]
    source = select(
        literal(None), literal(e["table"].name), literal(e["id"]), parent.c[area_column(parent)],
        parent.c.district_code, literal(str(e["op"])), literal(e["fields"]),
    ).where(parent.c.id == e["parent_id"])
    session.connection().execute(insert(_log_table()).from_select(LOG_COLUMNS[:7], source))


def _log_dependents_move(session: OrmSession, table: Table, row_id: str,
                         old: tuple[str, str | None] | None) -> None:
    """A row moved: the rows lying via it leave the old area and enter the new one."""
    if old is None:
        return
    conn = session.connection()
    log = _log_table()
    for dependent, key in dependents(table):
        conn.execute(insert(log).from_select(LOG_COLUMNS[:7], select(
            literal(None), literal(dependent.name), dependent.c.id, literal(old[0]), literal(old[1]), literal("exit"),
            literal(None),
        ).where(dependent.c[key] == row_id)))
        conn.execute(insert(log).from_select(LOG_COLUMNS[:7], select(
            literal(None), literal(dependent.name), dependent.c.id, table.c[area_column(table)], table.c.district_code,
            literal("upsert"), literal(None),
        ).join_from(dependent, table, dependent.c[key] == table.c.id).where(dependent.c[key] == row_id)))


# --- bulk statements ---------------------------------------------------------------------------------------


def _log_rows(table: Table, where: ColumnElement[bool], op: str, fields: list[str] | None) -> Any:
    """INSERT INTO sync_log … SELECT of the rows of `table` matching `where`, with their current area; the
    sequence number (`stamp_seq`) and the writing device (`log_writer`) are bound when it runs."""
    seq, writer = bindparam("stamp_seq", type_=BigInteger), bindparam("log_writer", type_=String)
    name, op_value, changed = literal(table.name), literal(str(op)), literal(_fields(fields))
    via = _via(table)
    if _everyone(table):
        stmt = select(seq, name, table.c.id, literal(EVERYONE), literal(None), op_value, changed, writer).where(where)
    elif via is not None:
        parent, key = via
        stmt = select(seq, name, table.c.id, parent.c[area_column(parent)], parent.c.district_code,
                      op_value, changed, writer).join_from(table, parent, table.c[key] == parent.c.id).where(where)
    else:
        stmt = select(seq, name, table.c.id, table.c[area_column(table)], table.c.district_code, op_value,
                      changed, writer).where(where)
    return insert(_log_table()).from_select(LOG_COLUMNS, stmt)


def mark_rows(session: Session, table: Table, where: ColumnElement[bool], op: str = SyncOp.upsert,
              fields: list[str] | None = None) -> None:
    """Log the rows of `table` matching `where` (call after a bulk UPDATE/INSERT; before a bulk DELETE with
    op="delete"), with their current area. INSERT … SELECT: no rows are loaded."""
    if not is_synced(table.name):
        raise ValueError(f"{table.name} is not a synced table")
    ledger = ledger_of(session)
    stmt = _log_rows(table, where, str(op), fields)
    if op == SyncOp.upsert:
        # The rows' state at commit is what phones must get: select them then, numbered directly.
        ledger.selects.append((stmt, {"log_writer": ledger.writer}))
        return
    session.execute(stmt, {"stamp_seq": None, "log_writer": ledger.writer})
    ledger.staged = True


def mark_ids(session: Session, table: Table, ids: list[str]) -> None:
    """`mark_rows` of the rows with these ids, new or rewritten whole (upsert, every column): the statement is
    built once per table (every visit written logs itself and its deliveries this way)."""
    if not is_synced(table.name):
        raise ValueError(f"{table.name} is not a synced table")
    ledger = ledger_of(session)
    ledger.selects.append(_by_ids(table)(ids, log_writer=ledger.writer))


def mark_new(session: Session, table: Table, rows: Iterable[tuple[str, str, str | None]],
             fields: list[str] | None = None) -> None:
    """The log rows of records just inserted (or updated in bulk: `fields`, the columns changed, as the ORM's
    flush lists them), given as (id, area path, district) from the values in hand, for a table whose rows carry
    their own area and did not move: written at the stamp in one insert with the transaction's other log rows,
    where `mark_ids` would select each table's rows again (a visit and its deliveries: one statement)."""
    if not is_synced(table.name) or _everyone(table) or _via(table) is not None:
        raise ValueError(f"{table.name} is not a synced table with an area of its own")
    ledger = ledger_of(session)
    name, op, changed, writer = table.name, str(SyncOp.upsert), _fields(fields), ledger.writer
    ledger.rows.extend((name, record_id, area, district, op, changed, writer) for record_id, area, district in rows)


@cache
def _by_ids(table: Table) -> ByKey[Any]:
    return ByKey(lambda key: _log_rows(table, key(table.c.id), str(SyncOp.upsert), None), lean=True)


def mark_area_move(session: Session, table: Table, old_prefix: str, new_prefix: str) -> None:
    """Log a bulk move of `table`'s rows from under `old_prefix` to under `new_prefix` (call after the
    UPDATE that rewrote their paths; `new_prefix` is the moved subtree's new root, where nothing else lies):
    an `exit` under the old path and an `upsert` under the new one (and the same for the rows lying via them)."""
    if not is_synced(table.name) or _everyone(table) or _via(table) is not None:
        raise ValueError(f"{table.name} has no area of its own")
    path = table.c[area_column(table)]
    moved = func.substr(path, 1, len(new_prefix)) == new_prefix
    old_path = literal(old_prefix) + func.substr(path, len(new_prefix) + 1)
    session.execute(insert(_log_table()).from_select(LOG_COLUMNS[:7], select(
        literal(None), literal(table.name), table.c.id, old_path, table.c.district_code, literal("exit"), literal(None),
    ).where(moved)))
    ledger_of(session).staged = True
    mark_rows(session, table, moved, SyncOp.upsert, [path.name])
    for dependent, key in dependents(table):
        session.execute(insert(_log_table()).from_select(LOG_COLUMNS[:7], select(
            literal(None), literal(dependent.name), dependent.c.id, old_path, table.c.district_code, literal("exit"),
            literal(None),
        ).join_from(dependent, table, dependent.c[key] == table.c.id).where(moved)))
        mark_rows(session, dependent, dependent.c[key].in_(select(table.c.id).where(moved)))


def stage(session: Session) -> None:
    """Make the commit take a sequence number even with nothing logged (a push that only rejected records,
    a pull that handed out a new scope)."""
    ledger_of(session).staged = True


def set_writer(session: Session, device_row_id: str | None) -> None:
    """The device whose push this unit of work applies: its own changes are no conflict to it later."""
    ledger_of(session).writer = device_row_id


# --- stamping at commit ------------------------------------------------------------------------------------


def stamp(session: Session, ledger: Ledger) -> bool:
    """Give this transaction's log rows the next sequence number; whether there were any. Updating the counter
    takes its row lock, which is the chain lock (`audit.lock_chain`), until the transaction ends."""
    if not (ledger.staged or ledger.rows or ledger.selects):
        return False
    # On the connection: the session has flushed (`seal`), and the session's own `execute` costs ~40 µs more a
    # statement (every write transaction runs these).
    conn = session.connection()
    seq = _NEXT_SEQ.scalar(conn)
    if ledger.rows:  # in bulk (COPY on PostgreSQL): a push's visits and deliveries log thousands
        BulkWriter(session).write(_log_table(), LOG_COLUMNS, [(seq, *row) for row in ledger.rows])
    for stmt, params in ledger.selects:
        run(conn, stmt, {**params, "stamp_seq": seq})
    if ledger.staged:  # rows written with seq NULL: the log's, and those of the stamped tables
        for stmt in _stamped():
            conn.execute(stmt, {"stamp_seq": seq})
    return True


_NEXT_SEQ = Lean(text("UPDATE sync_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq"))


@cache
def _stamped() -> list[Update]:
    """The staged rows' numbering, one statement per table, built once: the log's rows with seq NULL, and each
    stamped table's (`info={"stamp": column}`) where that column is NULL. Writing a row to a stamped table
    stages the unit of work (`collect` sees it; a bulk writer calls `stage`)."""
    log = _log_table()
    made = [update(log).where(log.c.seq.is_(None)).values(seq=bindparam("stamp_seq"))]
    for table in SQLModel.metadata.sorted_tables:
        if "stamp" in table.info:
            column = table.c[table.info["stamp"]]
            made.append(update(table).where(column.is_(None)).values({column.name: bindparam("stamp_seq")}))
    return made
