"""Verifications pushed by a phone: an outcome recorded offline goes through the REST route's own function
(`app.cycle.verification.recording.record`), so the rules, the register effects and the refusals are the same.

A phone never creates a verification (opening a month does): a pushed id the server does not hold in the
caller's area is refused `not_found`, and the next pull deletes it from the phone. The version checked is the
one the phone pulled (its raw `version`): an outcome recorded meanwhile on the server or by another phone is
refused `stale_version` or `verification_recorded`, and the next pull brings the server's record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.cycle.verification import recording
from app.cycle.verification.errors import EvidenceMissing
from app.cycle.verification.schemas import VerificationRecord
from app.sync.push.errors import RecordInvalid
from app.sync.push.schemas import Incoming

if TYPE_CHECKING:
    from app.sync.push.service import Pusher

WRITABLE = frozenset(recording.RECORDED)
# The server's own columns: a phone's idea of them is ignored.
DERIVED = frozenset({"verified_by", "verified_at", "not_found_streak", "checkin_flags", "proposed_outcome",
                     "proposed_source", "proposed_on", "proposed_at", "proposed_by"})


def push_verification(pusher: Pusher, rec: Incoming) -> None:
    stored = recording.get_verification(pusher.session, pusher.actor, rec.id)
    wanted = pusher.update_fields(rec, stored, WRITABLE, DERIVED)
    if all(value == getattr(stored, name) for name, value in wanted.items()):
        pusher.out.unchanged += 1
        return
    version = rec.raw.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise RecordInvalid({"field": "version"})
    values: dict[str, Any] = {name: getattr(stored, name) for name in WRITABLE}
    values.update(wanted)
    if values.get("evidence") is None:
        raise EvidenceMissing()
    if values.get("moved_on") is not None:
        values["moved_on"] = values["moved_on"].isoformat()
    body = VerificationRecord.model_validate({**{k: v for k, v in values.items() if v is not None},
                                              "version": version})
    _, changed = recording.record(pusher.session, pusher.actor, rec.id, body)
    if changed:
        pusher.out.add("verifications")
    else:
        pusher.out.unchanged += 1
