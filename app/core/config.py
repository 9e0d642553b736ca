"""Settings, read from the environment (and an optional .env file).

Development defaults let `make run` work with nothing configured; production mode refuses to start
with any of them left in place (see `Settings.check_production`).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_KEYS = "dev-1:development-only-signing-key-change-me-0000000000"
DEV_THROTTLE_SECRET = "development-only-throttle-secret"  # noqa: S105 - a marked development default
# The audit chain's HMAC key (chain format 3) and the Ed25519 key that signs its checkpoints: marked development
# defaults, refused in production. The signing key is a base64 32-byte seed (`migrant audit-keygen` makes one).
DEV_AUDIT_HMAC_KEYS = "dev-1:development-only-audit-chain-key-change-me-00"
DEV_AUDIT_SIGNING_KEYS = "dev-1:ZGV2ZWxvcG1lbnQtb25seS1zaWduaW5nLWtleS0wMDA="
# Seals the webhook signing secrets at rest (app/sharing/webhooks/sealing.py): a marked default, refused in production.
DEV_WEBHOOK_SECRET_KEYS = "dev-1:development-only-webhook-secret-key-change-me"  # noqa: S105 - marked default
# The project directory: alembic.ini, migrations/ and the default data/ folder live here. A source checkout
# finds itself; an installed package (the Docker image) is told with MIGRANT_HOME.
ROOT = Path(os.environ.get("MIGRANT_HOME") or Path(__file__).resolve().parents[2])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    app_env: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite:///{ROOT / 'data' / 'app.db'}"
    # Connections per process, kept open. Requests beyond that wait in line (not in a thread) for up to
    # DB_QUEUE_SECONDS, then get 503 service_busy with Retry-After.
    db_pool_size: int = Field(default=20, ge=1, le=400)
    db_queue_seconds: float = Field(default=15.0, ge=0.1, le=120)
    # Threads that run the phones' frequent requests at once, per process (app/core/threads.py); 0: one per core on
    # SQLite, four per core on PostgreSQL.
    hop_threads: int = Field(default=0, ge=0, le=256)

    # Tokens. JWT_KEYS is "kid:secret[,kid:secret…]"; the first signs, all verify (rotation).
    jwt_keys: str = DEV_JWT_KEYS
    jwt_issuer: str = "migrant-services"
    jwt_audience: str = "migrant-services-api"
    access_token_minutes: int = Field(default=10, ge=1, le=15)
    refresh_token_days: int = Field(default=7, ge=1, le=30)
    idle_timeout_minutes: int = Field(default=30, ge=1, le=30)

    # Login protection.
    login_max_failures: int = Field(default=5, ge=1, le=5)
    login_lock_minutes: int = Field(default=15, ge=10)
    login_ip_max_failures: int = Field(default=30, ge=1)
    login_ip_window_minutes: int = Field(default=15, ge=1)
    throttle_secret: str = DEV_THROTTLE_SECRET
    trust_forwarded_for: bool = False
    # argon2id cost (pwdlib's defaults). Lower only for test runs; hashes record their own parameters.
    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65536, ge=1024, le=1_048_576)

    # API limits.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    page_max: int = Field(default=200, ge=10, le=1000)
    # Sync push bodies (a day of offline work); gzip-compressed bodies are limited to this once inflated.
    sync_push_max_bytes: int = Field(default=8_388_608, ge=65_536, le=268_435_456)
    # Records in one push (every table, deletions included), refused before any work (413 push_too_large). Records
    # that each go through the register's full checks (dwellings, residents, tasks, deletions) are limited to a
    # tenth of it: they cost milliseconds each, and on SQLite every other writer waits for the push.
    sync_push_max_records: int = Field(default=5000, ge=100, le=50_000)

    # Audit retention: the law (Cybersecurity Law art. 21) asks for at least 6 months.
    audit_retention_days: int = Field(default=180, ge=180)
    # The chain's row hash is an HMAC with the first of these keys (`kid:secret[,kid:secret…]`; all verify: keys
    # rotate, rows name theirs), so someone with write access to the database but not this key cannot recompute
    # it. Checkpoints of the chain head are signed with the first Ed25519 key (`kid:base64-seed[,…]`).
    audit_hmac_keys: str = DEV_AUDIT_HMAC_KEYS
    audit_signing_keys: str = DEV_AUDIT_SIGNING_KEYS
    # Residents who left more than this many years ago are anonymised by `migrant retention-run` (PIPL art. 19).
    retention_years: int = Field(default=3, ge=1, le=100)

    # Visits and check-in (flags are computed by the server when a visit arrives).
    visit_radius_m: float = Field(default=200, ge=20, le=5000)
    visit_max_accuracy_m: float = Field(default=100, ge=5, le=5000)
    visit_clock_tolerance_seconds: int = Field(default=300, ge=0, le=86400)
    visit_late_hours: int = Field(default=72, ge=1, le=24 * 90)
    visit_fix_max_age_seconds: int = Field(default=900, ge=30, le=86400)
    visit_max_age_days: int = Field(default=90, ge=1, le=3660)
    # Tasks: a newly reported arrival is visited within this many days; key persons by this day of each month.
    new_arrival_visit_days: int = Field(default=7, ge=1, le=60)
    key_person_visit_due_day: int = Field(default=25, ge=1, le=28)
    # Assistance requests (协查, docs/assistance.md): answer delays in days (urgent = currently pregnant), the
    # day of the month by which a normal request must be sent to count from that day (later: from the 1st of
    # the next month), the day by which feedback is due within a month, and the partner cities (6-digit codes).
    assistance_urgent_days: int = Field(default=15, ge=5, le=90)
    assistance_normal_days: int = Field(default=30, ge=5, le=180)
    assistance_send_cutoff_day: int = Field(default=20, ge=1, le=28)
    assistance_feedback_cutoff_day: int = Field(default=27, ge=1, le=28)
    assistance_partner_cities: str = Field(default="411600,411700,411500", max_length=400)
    # The monthly verification (docs/cycle.md): NOT_FOUND this many months in a row ends the residence as
    # whereabouts unknown (去向不明); phones keep the periods and verifications of this many months.
    verification_not_found_months: int = Field(default=3, ge=1, le=24)
    sync_window_months: int = Field(default=3, ge=2, le=24)
    # Phones keep the visits (and their service deliveries) started in this many calendar months, the current
    # one included (docs/sync.md "The sync window"): 4 is at least 89 days back, about as far as a phone may still
    # push a visit (VISIT_MAX_AGE_DAYS), and holds the last visit of a resident seen each quarter.
    sync_visit_months: int = Field(default=4, ge=2, le=120)
    # The monthly report (docs/reports.md): due by this day of the month after the month it covers.
    report_due_day: int = Field(default=25, ge=1, le=28)
    # Visit photos: stored on disk, outside the database.
    photo_dir: Path = ROOT / "data" / "photos"
    photo_max_bytes: int = Field(default=5_242_880, ge=10_240, le=52_428_800)
    # Width × height a photo may declare; checked before decoding (a small file can inflate to gigabytes).
    # Pillow's own bomb guard (89 Mpx) sits above the highest value allowed here.
    photo_max_pixels: int = Field(default=40_000_000, ge=1_000_000, le=80_000_000)
    photo_max_per_visit: int = Field(default=6, ge=1, le=50)
    photo_upload_hours: int = Field(default=72, ge=1, le=24 * 30)

    # Visit quality (supervisor audit): thresholds of the rules that score each visit (docs/audit.md).
    quality_max_speed_kmh: float = Field(default=60, ge=5, le=1000)
    quality_cluster_radius_m: float = Field(default=30, ge=1, le=1000)
    quality_cluster_minutes: int = Field(default=15, ge=1, le=240)
    quality_cluster_dwellings: int = Field(default=4, ge=2, le=100)
    quality_min_visit_minutes: float = Field(default=3, ge=0, le=120)
    quality_min_call_seconds: int = Field(default=30, ge=0, le=3600)
    quality_in_person_purposes: str = Field(default="new_arrival,key_person", max_length=200)
    quality_max_clock_skew_seconds: int = Field(default=120, ge=1, le=86400)
    # Working hours in city time (UTC+8): visits and sensitive reads outside [start, end) are unusual.
    work_start_hour: int = Field(default=7, ge=0, le=23)
    work_end_hour: int = Field(default=21, ge=1, le=24)
    # Access review (auditors): a burst of sensitive reads, and how near a visit or task must be to a lookup.
    access_bulk_reads: int = Field(default=50, ge=2, le=100_000)
    access_bulk_minutes: int = Field(default=10, ge=1, le=1440)
    access_lookup_days: int = Field(default=7, ge=0, le=90)

    # Partners (docs/sharing.md): a machine client's access token lifetime; the quotas of partner routes
    # ("Quotas"): requests per client, kind of route and fixed window; look-up misses (nobody found in the
    # jurisdiction) in one look-up window that raise an enumeration alert.
    partner_token_minutes: int = Field(default=10, ge=1, le=15)
    partner_lookup_limit: int = Field(default=60, ge=1, le=100_000)
    partner_lookup_window_seconds: int = Field(default=60, ge=1, le=86_400)
    # China's working-day calendar (app/core/workdays.py): 2025 and 2026 are built in; this JSON file adds other
    # years (docs/sharing.md, "Working days"). Read and checked when the settings load: a bad file stops the start.
    workday_calendar_file: Path | None = None
    # A disclosure request held for a supervisor's approval expires this long after it was made, decided or not.
    disclosure_approval_ttl_hours: int = Field(default=72, ge=1, le=720)
    partner_lookup_miss_alert: int = Field(default=20, ge=1, le=100_000)
    partner_feed_limit: int = Field(default=120, ge=1, le=100_000)
    partner_feed_window_seconds: int = Field(default=60, ge=1, le=86_400)
    partner_upload_limit: int = Field(default=20, ge=1, le=100_000)
    partner_upload_window_seconds: int = Field(default=3600, ge=1, le=86_400)
    partner_assistance_limit: int = Field(default=120, ge=1, le=100_000)
    partner_assistance_window_seconds: int = Field(default=60, ge=1, le=86_400)
    landlord_read_limit: int = Field(default=60, ge=1, le=100_000)
    landlord_read_window_seconds: int = Field(default=60, ge=1, le=86_400)
    landlord_write_limit: int = Field(default=30, ge=1, le=100_000)
    landlord_write_window_seconds: int = Field(default=60, ge=1, le=86_400)
    # `redis://host:6379/0`: the quotas' counters live there (shared by every process); empty: in the database.
    redis_url: str = Field(default="", max_length=400)
    # Push delivery (docs/sharing.md, "Push delivery"): `migrant outbox-run` tries an event this many times, waiting
    # OUTBOX_BACKOFF_SECONDS × 2^(tries-1) (at most OUTBOX_BACKOFF_MAX_SECONDS, with jitter) between tries, then
    # dead-letters it. A claimed event comes due again after OUTBOX_LEASE_SECONDS if its worker died (kept well
    # above the HTTP timeout). Delivered events and their delivery log are deleted after OUTBOX_KEEP_DAYS.
    outbox_max_attempts: int = Field(default=8, ge=1, le=50)
    outbox_backoff_seconds: float = Field(default=10, ge=0, le=3600)
    outbox_backoff_max_seconds: float = Field(default=3600, ge=0, le=86400)
    outbox_timeout_seconds: float = Field(default=5, ge=0.1, le=60)
    outbox_lease_seconds: float = Field(default=300, ge=0.5, le=3600)
    outbox_batch_size: int = Field(default=50, ge=1, le=1000)
    outbox_keep_days: int = Field(default=30, ge=1, le=3660)
    # `kid:secret[,kid:secret…]`: the first seals the webhook secrets stored in the database, all open them.
    webhook_secret_keys: str = DEV_WEBHOOK_SECRET_KEYS

    log_level: str = "INFO"

    # Where `migrant seed-demo` keeps the demo logins it generated (mode 0600; never commit it).
    demo_logins_file: Path = ROOT / "data" / "demo-logins.txt"

    @field_validator("jwt_keys")
    @classmethod
    def _keys_parse(cls, value: str) -> str:
        parse_keys(value)
        return value

    @field_validator("audit_hmac_keys", "audit_signing_keys", "webhook_secret_keys")
    @classmethod
    def _audit_keys_parse(cls, value: str) -> str:
        parse_keys(value, "AUDIT keys")
        return value

    @field_validator("assistance_partner_cities")
    @classmethod
    def _partner_cities(cls, value: str) -> str:
        value = value.replace(" ", "")
        if not re.fullmatch(r"([0-9]{4}00(,[0-9]{4}00)*)?", value):
            raise ValueError("ASSISTANCE_PARTNER_CITIES is a comma-separated list of 6-digit city codes (....00)")
        return value

    @property
    def partner_cities(self) -> frozenset[str]:
        return frozenset(c for c in self.assistance_partner_cities.split(",") if c)

    @field_validator("workday_calendar_file", mode="before")
    @classmethod
    def _calendar_blank(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("workday_calendar_file")
    @classmethod
    def _calendar_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            from app.core.workdays import load_file  # a cycle: workdays reads these settings

            load_file(value)
        return value

    @field_validator("quality_in_person_purposes")
    @classmethod
    def _purposes(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z_]*(,[a-z_]+)*", value.replace(" ", "")):
            raise ValueError("QUALITY_IN_PERSON_PURPOSES is a comma-separated list of visit purposes")
        return value.replace(" ", "")

    @property
    def signing_keys(self) -> dict[str, str]:
        return parse_keys(self.jwt_keys)

    @property
    def current_kid(self) -> str:
        return next(iter(self.signing_keys))

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def check_production(self) -> None:
        """Refuse to run in production with development secrets or the embedded database."""
        if self.app_env != "production":
            return
        problems = []
        if not self.database_url.startswith("postgresql"):
            problems.append("DATABASE_URL must name a PostgreSQL database (postgresql+psycopg://…)")
        if self.jwt_keys == DEV_JWT_KEYS or any(len(s) < 32 for s in self.signing_keys.values()):
            problems.append("JWT_KEYS must be set to secrets of at least 32 characters")
        if self.throttle_secret == DEV_THROTTLE_SECRET or len(self.throttle_secret) < 32:
            problems.append("THROTTLE_SECRET must be set to a secret of at least 32 characters")
        if self.audit_hmac_keys == DEV_AUDIT_HMAC_KEYS or any(
                len(s) < 32 for s in parse_keys(self.audit_hmac_keys).values()):
            problems.append("AUDIT_HMAC_KEYS must be set to secrets of at least 32 characters")
        if self.webhook_secret_keys == DEV_WEBHOOK_SECRET_KEYS or any(
                len(s) < 32 for s in parse_keys(self.webhook_secret_keys).values()):
            problems.append("WEBHOOK_SECRET_KEYS must be set to secrets of at least 32 characters")
        if self.audit_signing_keys == DEV_AUDIT_SIGNING_KEYS:
            problems.append("AUDIT_SIGNING_KEYS must be set (migrant audit-keygen makes a key)")
        if self.argon2_memory_kib < 19456 or self.argon2_time_cost < 2:
            problems.append("argon2 cost below OWASP's minimum (19 MiB, 2 passes)")
        if problems:
            raise RuntimeError("refusing to start in production: " + "; ".join(problems))


def parse_keys(value: str, name: str = "JWT_KEYS") -> dict[str, str]:
    keys: dict[str, str] = {}
    for part in value.split(","):
        kid, sep, secret = part.strip().partition(":")
        if not sep or not kid or not secret:
            raise ValueError(f"{name} must look like 'kid:secret[,kid:secret]'")
        keys[kid] = secret
    return keys


@lru_cache
def get_settings() -> Settings:
    return Settings()
