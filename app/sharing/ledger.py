"""The disclosure ledger: every record disclosed to a partner, pushed or pulled, enters it.

One row per resident and disclosure (`people.models.Disclosure`): which partner (kind and id), which field
groups, when, on which legal basis. The resident's dossier shows the rows (app/people/rights.py), the auditor's
access review counts them per partner (app/audit/access). Rows are written in the disclosing request's own
transaction, so a disclosure that is rolled back leaves no entry and an answer that leaves always has one.

A feed page or a look-up discloses many residents at once: the rows go in bulk, with one audit event for the
disclosure (its partner, count and field groups; never a resident's data).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlmodel import Session

from app.core.bulk import BulkWriter, table_of
from app.core.types import new_id, utcnow
from app.ledger import audit
from app.people.models import Disclosure

COLUMNS = ("id", "resident_id", "district_code", "partner_kind", "partner_id", "field_groups", "legal_basis",
           "disclosed_at")


def disclose(session: Session, *, partner_kind: str, partner_id: str, residents: Iterable[tuple[str, str]],
             field_groups: Sequence[str], legal_basis: str, action: str = "sharing.disclose") -> int:
    """Enter one disclosure per resident (`(resident_id, district_code)` pairs); returns how many."""
    now, groups = utcnow(), ",".join(sorted(set(field_groups)))
    rows = [(new_id(), rid, district, partner_kind, partner_id, groups, legal_basis, now)
            for rid, district in dict(residents).items()]
    if not rows:
        return 0
    BulkWriter(session).write(table_of(Disclosure), COLUMNS, rows)
    audit.record(session, action, target_type="partner", target_id=partner_id[:32], fields=sorted(set(field_groups)),
                 detail={"partner_kind": partner_kind, "residents": len(rows)})
    return len(rows)
