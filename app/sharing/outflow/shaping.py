"""How an outflow city sees a person in one event: identity and the event's own field group, as the profile in
force allows them. The change feed (app/sharing/outflow/service.py) and the pushed events
(app/sharing/webhooks/outflow.py) both shape through here, so a pushed event never shows more than the feed.

An event whose own group the profile withholds is not shown at all (not an identity-only stub): a verification
without the verification group, a 婚育证明 without fp_document, an arrival or departure without residence.
"""

from __future__ import annotations

from typing import Any

from app.people.models import Resident
from app.people.shapes import ShapeExtra
from app.sharing.profiles.service import Profile

# Each feed event's field group: the profile must hold it for the event to be shown at all.
EVENT_GROUPS = {"arrival": "residence", "departure": "residence", "verification": "verification",
                "fp_document": "fp_document"}


def shape(profile: Profile, resident: Resident, group: str, extra: ShapeExtra,
          month: str | None = None) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """(the groups shown, the person) for an event of `group`, or None when the profile withholds the group.
    `month`: the verification's month, shown beside its outcome."""
    if not profile.allows(group):
        return None
    groups = tuple(g for g in ("identity", group) if profile.allows(g))
    person = profile.shape(resident, extra, groups)
    if month is not None and "verification_status" in person:
        person["verification_month"] = month
    return groups, person
