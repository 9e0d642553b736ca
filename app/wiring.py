"""Wire the layers together, explicitly and once: what the ground floor and the lower domains call into.

`install()` runs in `create_app()`, in the CLI before any command, and in the test harness. It registers:
- the ledger's commit hook and flush listeners (app/ledger/service.py), and its record of refused requests;
- the subscriptions of higher domains to lower domains' events (app/core/events.py): the monthly cycle's
  task list follows the register and the visits; assistance requests follow residents who move or are merged;
  pending verifications follow residents who move, an arrival in an open month gets one, those of a merged
  record or a resident who left go; residents arriving, moving (in and out) and leaving are queued for the
  partners' webhooks (app/sharing/webhooks/producer.py), and so are the outflow cities' own events: verification
  outcomes, 婚育证明 changes, assistance requests sent and answered (app/sharing/webhooks/outflow.py);
- the partner roles' scopes (app.auth.deps.register_partner_scope): a police station's or an outflow city's
  jurisdiction (app/sharing/partners), a landlord's own landlord record (app/sharing/landlords).
Nothing is registered at import time, so importing a module never changes how another one behaves.
"""

from __future__ import annotations

from sqlmodel import Session

from app import registry  # noqa: F401 - complete metadata before the ledger reads the tables' info
from app.auth.deps import register_partner_scope
from app.core import events
from app.core.actor import Role
from app.core.deps import RequestRefused
from app.cycle.assistance import service as assistance
from app.cycle.tasks import completion
from app.cycle.tasks import service as tasks
from app.cycle.verification import recording as verification
from app.ledger import audit
from app.ledger import service as ledger
from app.people.events import ResidentRegistered
from app.sharing.landlords.service import landlord_scope
from app.sharing.partners.deps import build_scope
from app.sharing.uploads import review as police_reports
from app.sharing.webhooks import outflow as outflow_webhooks
from app.sharing.webhooks import producer as webhooks


def _audit_refusal(session: Session, event: RequestRefused) -> None:
    audit.record(session, "http." + event.outcome, target_type="route",
                 target_id=f"{event.method} {event.path}"[:100], outcome=event.outcome, status_code=event.status,
                 detail={"code": event.code})


def install() -> None:
    ledger.install()
    events.subscribe(RequestRefused, _audit_refusal)
    tasks.subscribe()
    completion.subscribe()
    assistance.subscribe()
    verification.subscribe()
    # Machine clients' jurisdictions (docs/sharing.md).
    register_partner_scope(Role.police, build_scope)
    register_partner_scope(Role.outflow_city, build_scope)
    register_partner_scope(Role.landlord, landlord_scope)
    webhooks.subscribe()
    outflow_webhooks.subscribe()
    # A person a station reported as new, registered in that community: the report is settled (docs/sharing.md).
    events.subscribe(ResidentRegistered, police_reports.on_resident_registered)
