"""Signed checkpoints of the audit chain: proof, kept outside the system, that the log was not rewritten.

A checkpoint states the chain's head — the newest row's id and hash, the first kept row, how many rows, the
chain format and the first keyed (format 3) row — and signs that statement with Ed25519 under the first key
of AUDIT_SIGNING_KEYS (`kid:base64-seed`, configured like the JWT keys; never the database credentials).
`migrant audit-checkpoint` makes one (run it from cron, e.g. hourly) and can write it to a file; auditors list
and download them over the API. Whoever keeps the file can later run `migrant audit-verify --checkpoint FILE`:

- the signature must verify (with the configured key of that id, or a public key given on the command line:
  an outside party pins the key it was given, `migrant audit-public-keys`);
- the chain must walk clean, and no row at or after the checkpoint's first keyed row may be unkeyed;
- the row the checkpoint names must still be there with the same hash. Cutting off the newest rows, or
  editing a row and recomputing every later hash, passes a bare chain walk; it cannot pass this.

Rows written after the newest checkpoint are protected by the keyed hash only: checkpoint often.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from sqlalchemy import func, select
from sqlmodel import Session, col

from app.core.config import get_settings, parse_keys
from app.core.types import utcnow
from app.ledger import audit
from app.ledger.models import AuditCheckpoint, AuditEvent

FORMAT = "migrant-audit-checkpoint/1"
SIGNED_FIELDS = ("format", "checkpoint_id", "signed_at", "first_id", "last_id", "last_hash", "rows",
                 "chain_version", "keyed_from", "key_id")


class CheckpointKeyError(ValueError):
    """AUDIT_SIGNING_KEYS is malformed (or a key id is unknown)."""


@lru_cache(maxsize=4)
def _keys(value: str) -> tuple[str, dict[str, Ed25519PrivateKey]]:
    keys: dict[str, Ed25519PrivateKey] = {}
    for kid, seed in parse_keys(value, "AUDIT_SIGNING_KEYS").items():
        try:
            raw = base64.b64decode(seed, validate=True)
        except binascii.Error:
            raise CheckpointKeyError(f"AUDIT_SIGNING_KEYS: key {kid!r} is not base64") from None
        if len(raw) != 32 or len(kid) > 20:
            raise CheckpointKeyError(f"AUDIT_SIGNING_KEYS: key {kid!r} must be a 32-byte seed, its id ≤ 20 chars")
        keys[kid] = Ed25519PrivateKey.from_private_bytes(raw)
    return next(iter(keys)), keys


def signing_keys() -> tuple[str, dict[str, Ed25519PrivateKey]]:
    """(current key id, every configured key by id)."""
    return _keys(get_settings().audit_signing_keys)


def public_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_keys() -> dict[str, str]:
    """Every configured key's public half (base64), for outside parties to pin."""
    return {kid: public_b64(key) for kid, key in signing_keys()[1].items()}


def new_key_line(kid: str) -> tuple[str, str]:
    """A fresh `kid:seed` for AUDIT_SIGNING_KEYS and its public key."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return f"{kid}:{base64.b64encode(seed).decode()}", public_b64(key)


def statement(doc: dict[str, Any]) -> bytes:
    """The signed bytes: the statement's fields as canonical JSON (sorted keys, no spaces)."""
    return json.dumps({k: doc.get(k) for k in SIGNED_FIELDS}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True).encode()


def document(cp: AuditCheckpoint) -> dict[str, Any]:
    """The exportable checkpoint: the statement, the public key and the signature."""
    return {"format": FORMAT, "checkpoint_id": cp.id,
            "signed_at": cp.signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "first_id": cp.first_id, "last_id": cp.last_id, "last_hash": cp.last_hash, "rows": cp.rows,
            "chain_version": cp.chain_version, "keyed_from": cp.keyed_from, "key_id": cp.key_id,
            "public_key": cp.public_key, "signature": cp.signature}


class EmptyChain(ValueError):
    pass


def create(session: Session, *, signed_by: str | None = None, via: str = "api") -> AuditCheckpoint:
    """Sign the chain's head now (in the caller's write transaction, under the chain lock), store the
    checkpoint and record it in the chain (`audit.checkpoint`, appended at commit after the head it signs)."""
    audit.lock_chain(session.connection())
    ids = col(AuditEvent.id)
    head = session.execute(select(ids, col(AuditEvent.hash), col(AuditEvent.chain_version))
                           .order_by(ids.desc()).limit(1)).first()
    if head is None:
        raise EmptyChain("the audit chain is empty")
    first_id, rows = session.execute(select(func.min(ids), func.count())).one()
    keyed_from = session.execute(select(func.min(ids)).where(
        col(AuditEvent.chain_version) >= audit.KEYED_FROM)).scalar()
    number = (session.execute(select(func.max(col(AuditCheckpoint.id)))).scalar() or 0) + 1
    kid, keys = signing_keys()
    cp = AuditCheckpoint(id=number, signed_at=utcnow().replace(microsecond=0), first_id=first_id, last_id=head[0],
                         last_hash=head[1], rows=rows, chain_version=head[2] or 1, keyed_from=keyed_from,
                         key_id=kid, public_key=public_b64(keys[kid]), signature="", signed_by=signed_by)
    cp.signature = base64.b64encode(keys[kid].sign(statement(document(cp)))).decode()
    session.add(cp)
    session.flush()
    audit.record(session, "audit.checkpoint", target_type="audit_checkpoints", target_id=str(cp.id),
                 detail={"last_id": cp.last_id, "last_hash": cp.last_hash, "rows": cp.rows, "key_id": kid,
                         "via": via})
    return cp


# --- verifying ----------------------------------------------------------------------------------------------


@dataclass
class CheckpointReport:
    ok: bool
    reason: str | None
    chain: audit.ChainReport | None = None

    @property
    def first_broken_id(self) -> int | None:
        return self.chain.first_broken_id if self.chain is not None else None


def check_signature(doc: dict[str, Any], public_key: str | None = None) -> str | None:
    """None if the document is a checkpoint signed by the trusted key, else why not."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return "not a checkpoint file (format)"
    for name, kind in (("last_id", int), ("first_id", int), ("last_hash", str), ("signature", str),
                       ("key_id", str), ("public_key", str)):
        if not isinstance(doc.get(name), kind):
            return f"checkpoint field {name} missing or malformed"
    trusted = public_key
    if trusted is None:
        key = signing_keys()[1].get(doc["key_id"])
        if key is None:
            return f"signing key {doc['key_id']!r} is not configured: give its public key (--public-key)"
        trusted = public_b64(key)
    if doc["public_key"] != trusted:
        return "the checkpoint names another public key than the trusted one"
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(trusted, validate=True)).verify(
            base64.b64decode(doc["signature"], validate=True), statement(doc))
    except (InvalidSignature, binascii.Error, ValueError):
        return "signature does not verify: the checkpoint was altered or not signed by this key"
    return None


def verify(session: Session, doc: dict[str, Any], *, public_key: str | None = None) -> CheckpointReport:
    """The chain against a checkpoint (see the module docstring), in the caller's (read) transaction."""
    problem = check_signature(doc, public_key)
    if problem is not None:
        return CheckpointReport(False, problem)
    keyed_from = doc.get("keyed_from") if isinstance(doc.get("keyed_from"), int) else None
    chain = audit.verify_chain(session, keyed_from=keyed_from)
    if not chain.intact:
        return CheckpointReport(False, f"chain broken at row {chain.first_broken_id}: {chain.reason}", chain)
    last_id = doc["last_id"]
    stored = session.execute(select(col(AuditEvent.hash)).where(col(AuditEvent.id) == last_id)).scalar()
    first_kept = session.execute(select(func.min(col(AuditEvent.id)))).scalar()
    if stored is None and first_kept is not None and last_id < first_kept:
        return CheckpointReport(True, "the checkpoint's rows have all been purged since (retention): nothing "
                                      "left to compare", chain)
    if stored is None:
        return CheckpointReport(False, f"row {last_id} named by the checkpoint is missing: the chain ends at "
                                       f"{chain.last_id} (newest rows cut off)", chain)
    if stored != doc["last_hash"]:
        return CheckpointReport(False, f"row {last_id} does not match the checkpoint: the chain up to it was "
                                       "rewritten", chain)
    return CheckpointReport(True, None, chain)
