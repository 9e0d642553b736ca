"""The ledger: what every write leaves behind — the hash-chained audit log and the sync change log.

One `Ledger` per unit of work (`app.ledger.service`) queues audit events and change-log rows while the work
runs and seals them at commit, under one lock: the audit rows join the chain, the change-log rows get the
transaction's sequence number. Domains call `app.ledger.audit.record` and `app.ledger.changes.mark_rows`;
ORM writes are recorded by flush listeners. The ledger imports no domain: tables declare in their table
info what it needs (`docs/architecture.md`, "The ledger").
"""
