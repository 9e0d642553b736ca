"""API shapes of the chain's signed checkpoints (auditors)."""

from __future__ import annotations

from pydantic import Field

from app.core.schemas import OutputModel


class CheckpointOut(OutputModel):
    """A signed statement of the audit chain's head. Download it (GET …/{id}) and keep it outside the system;
    `migrant audit-verify --checkpoint FILE` later proves the chain still holds it."""

    format: str = Field(description="migrant-audit-checkpoint/1")
    checkpoint_id: int
    signed_at: str = Field(description="UTC, as signed: YYYY-MM-DDTHH:MM:SSZ")
    first_id: int = Field(description="The first row of the kept chain when signed (after retention purges)")
    last_id: int = Field(description="The chain's newest row when signed")
    last_hash: str
    rows: int
    chain_version: int = Field(description="The newest row's chain format (3: keyed HMAC)")
    keyed_from: int | None = Field(description="The first keyed row: no later row may be unkeyed")
    key_id: str = Field(description="Which AUDIT_SIGNING_KEYS key signed it")
    public_key: str = Field(description="Base64 of the raw Ed25519 public key")
    signature: str = Field(description="Base64 Ed25519 signature over the canonical JSON of the statement fields")
