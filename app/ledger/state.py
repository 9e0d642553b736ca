"""The ledger of one unit of work: what its writes leave behind, until the commit seals it.

Typed state instead of loose `session.info` keys: the audit events queued, the change-log rows waiting for
their sequence number, and who is writing. `mark()`/`restore()` take and put back all of it at once, which
is what a savepoint needs (`app.ledger.service.savepoint`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session

LEDGER = "ledger"  # the one session.info key the ledger uses
_installed = False  # set by app.ledger.service.install(), with the commit hook


class LedgerNotInstalled(RuntimeError):
    """Something was queued for the ledger, but its commit hook is not installed: it would be lost."""


@dataclass
class Ledger:
    # Audit events to append to the chain at commit.
    events: list[dict[str, Any]] = field(default_factory=list)
    # Change-log rows kept aside until the transaction's sequence number is known: the log's columns after `seq`
    # (`changes.LOG_COLUMNS[1:]`), as tuples (a push logs thousands).
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    # Change-log rows selected at commit (bulk writes: the rows' state then is what phones must get): INSERT …
    # SELECT statements and their parameters, `stamp_seq` bound at commit.
    selects: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    # Rows were written with seq NULL (stamped by one UPDATE), or the commit must take a number anyway.
    staged: bool = False
    # The sync device whose push is being applied (its own edits are no conflict to it).
    writer: str | None = None
    # Between a flush's start and its end: the synced writes seen, written once the flush has run.
    flushing: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pending(self) -> bool:
        return bool(self.events or self.rows or self.selects or self.staged)

    def mark(self) -> tuple[int, int, int, bool]:
        return len(self.events), len(self.rows), len(self.selects), self.staged

    def restore(self, mark: tuple[int, int, int, bool]) -> None:
        events, rows, selects, staged = mark
        del self.events[events:], self.rows[rows:], self.selects[selects:]
        self.staged = staged
        self.flushing.clear()

    def clear(self) -> None:
        self.restore((0, 0, 0, False))


def ledger_of(session: Session) -> Ledger:
    """The session's ledger (created on first use). Refuses while the commit hook is not installed."""
    ledger = session.info.get(LEDGER)
    if ledger is None:
        if not _installed:
            raise LedgerNotInstalled("app.wiring.install() was not called: audit records would be lost")
        ledger = session.info[LEDGER] = Ledger()
    return ledger


def mark_installed() -> None:
    global _installed
    _installed = True


def peek(session: Session) -> Ledger | None:
    """The session's ledger if anything was queued on it, else None (no ledger is created)."""
    ledger = session.info.get(LEDGER)
    return ledger if isinstance(ledger, Ledger) else None
