"""The audit keys: production refuses the development ones; malformed keys are refused at start."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.core.config import DEV_AUDIT_HMAC_KEYS, DEV_AUDIT_SIGNING_KEYS, Settings

GOOD = {"database_url": "postgresql+psycopg://u:p@h/db", "jwt_keys": "k:" + "j" * 40, "throttle_secret": "t" * 40,
        "argon2_time_cost": 2, "argon2_memory_kib": 19456, "webhook_secret_keys": "w1:" + "w" * 40}


def problems(**over: object) -> str:
    settings = Settings(app_env="production", **{**GOOD, **over})  # type: ignore[arg-type]
    try:
        settings.check_production()
    except RuntimeError as refused:
        return str(refused)
    return ""


def test_production_needs_real_audit_keys() -> None:
    real = {"audit_hmac_keys": "h1:" + "h" * 40, "audit_signing_keys": "s1:" + "A" * 43 + "="}
    assert problems(**real) == ""
    assert "AUDIT_HMAC_KEYS" in problems(**{**real, "audit_hmac_keys": DEV_AUDIT_HMAC_KEYS})
    assert "AUDIT_HMAC_KEYS" in problems(**{**real, "audit_hmac_keys": "h1:short"})
    assert "AUDIT_SIGNING_KEYS" in problems(**{**real, "audit_signing_keys": DEV_AUDIT_SIGNING_KEYS})


@pytest.mark.parametrize("field", ["audit_hmac_keys", "audit_signing_keys"])
def test_malformed_keys_are_refused(field: str) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: "no-colon-here"})  # type: ignore[arg-type]


def test_in_person_purposes_is_a_list() -> None:
    assert Settings(quality_in_person_purposes="new_arrival, key_person").quality_in_person_purposes == \
        "new_arrival,key_person"
    with pytest.raises(ValidationError):
        Settings(quality_in_person_purposes="new arrival;x")
