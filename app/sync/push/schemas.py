"""The push's shapes: WatermelonDB's `changes` parsed into records, its limits, and the outcome.

docs/sync.md "Push" is the contract.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from app.sync.push.errors import IdNotAccepted, PushInvalid, PushTooLarge, RecordInvalid, SyncTableUnknown
from app.sync.wire import MODELS

SHORT_ID = re.compile(r"^[A-Za-z0-9]{16,32}$")  # residents, dwellings: WatermelonDB ids or server ids
CLIENT_ID = re.compile(r"^[A-Za-z0-9-]{16,36}$")  # visits, deliveries, tasks: UUIDs allowed too
# An id a refusal can name (and the device's next pull delete): any id a WatermelonDB app can generate.
NAMEABLE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


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
    # Records refused before any work: (table, id, code). The id is "" when it cannot be named (not a string,
    # too long, odd characters); a nameable id is kept, so the device's next pull deletes the record.
    invalid: list[tuple[str, str, str]] = field(default_factory=list)


def id_pattern(table: str) -> re.Pattern[str]:
    return SHORT_ID if table in {"residents", "dwellings"} else CLIENT_ID


# Tables whose records each go through the register's full service path (and deletions, of any table).
ITEMISED_TABLES = frozenset({"dwellings", "residents", "tasks", "verifications"})


def push_limits(max_records: int) -> dict[str, int]:
    """The limits a push must keep (details of 413 push_too_large; docs/sync.md "Push")."""
    return {"max_records": max_records, "max_itemised": max(max_records // 10, 10)}


def check_size(body: dict[str, Any], max_records: int) -> None:
    """Refuse, before any work, a push over the limits (the app splits it: docs/sync.md)."""
    limits = push_limits(max_records)
    records = itemised = 0
    for table, changes in body.items():
        for kind, items in changes.items():
            records += len(items)
            if table in ITEMISED_TABLES or kind == "deleted":
                itemised += len(items)
    if records > limits["max_records"] or itemised > limits["max_itemised"]:
        raise PushTooLarge({**limits, "records": records, "itemised": itemised})


def parse(body: Any, max_records: int) -> Parsed:
    """WatermelonDB's `changes` (alone or as {"changes": …}) → records per table. Unknown table → 422; more
    records than the limits → 413."""
    if isinstance(body, dict) and isinstance(body.get("changes"), dict):
        body = body["changes"]
    if not isinstance(body, dict):
        raise PushInvalid()
    unknown = sorted(t for t in body if t not in MODELS)
    if unknown:
        raise SyncTableUnknown({"tables": [t[:40] for t in unknown[:10]]})
    for table, changes in body.items():
        if not isinstance(changes, dict) or not set(changes) <= {"created", "updated", "deleted"} or not all(
                isinstance(v, list) for v in changes.values()):
            raise PushInvalid({"table": table})
    check_size(body, max_records)
    parsed = Parsed()
    for table, changes in body.items():
        pattern, seen = id_pattern(table), set()
        for kind in ("created", "updated"):
            for raw in changes.get(kind, []):
                record_id = raw.get("id") if isinstance(raw, dict) else None
                if not isinstance(record_id, str) or not pattern.match(record_id) or record_id in seen:
                    parsed.invalid.append(_refused(table, record_id, pattern))
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
                parsed.invalid.append(_refused(table, record_id, pattern))
    return parsed


def _refused(table: str, record_id: Any, pattern: re.Pattern[str]) -> tuple[str, str, str]:
    """Why a record is refused before any work, naming it whenever it can be named (so the phone converges)."""
    if not isinstance(record_id, str) or not NAMEABLE.match(record_id):
        return table, "", RecordInvalid.code
    if not pattern.match(record_id):
        return table, record_id, IdNotAccepted.code  # e.g. a UUID for a resident
    return table, record_id, RecordInvalid.code  # the same id twice in one push


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

    def mark(self) -> tuple[dict[str, int], int, int, int]:
        return dict(self.applied), self.unchanged, len(self.rejected), self.conflicts

    def restore(self, mark: tuple[dict[str, int], int, int, int]) -> None:
        """Back to `mark` (the records since then were rolled back)."""
        self.applied, self.unchanged, rejected, self.conflicts = dict(mark[0]), mark[1], mark[2], mark[3]
        del self.rejected[rejected:]

    def add(self, table: str, n: int = 1) -> None:
        self.applied[table] = self.applied.get(table, 0) + n

    def body(self) -> dict[str, Any]:
        return {"ok": True, "rejected": [{"table": r.table, "id": r.id, "code": r.code, "message": r.message}
                                         for r in self.rejected],
                "applied": self.applied, "unchanged": self.unchanged}

    def counts(self) -> dict[str, Any]:
        return {"applied": self.applied, "unchanged": self.unchanged, "rejected": len(self.rejected),
                "conflicts": self.conflicts}
