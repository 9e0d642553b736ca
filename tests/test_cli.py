"""The `migrant` command line: clear errors with a non-zero exit, the password policy, an idempotent demo
seed that writes its logins where DEMO_LOGINS_FILE says (never into the repository during tests)."""

from __future__ import annotations

import json
import os
import re
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, func, select
from sqlmodel import col
from typer.testing import CliRunner, Result

from app.auth.models import User, UserScope
from app.cli import alembic_config, cli
from app.core.config import ROOT, get_settings
from app.core.db import create_db_engine, use_engine
from app.core.security import verify_password
from app.places.models import Division, Dwelling
from tests.conftest import Databases, World

STRONG = "Quiet-Harbor-2026!"


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(cli, list(args), input=input, prog_name="migrant")


def said(result: Result) -> str:
    """What the user saw, with the help boxes and line wrapping taken out."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


@pytest.fixture()
def logins_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "secrets" / "demo-logins.txt"
    os.environ["DEMO_LOGINS_FILE"] = str(path)
    get_settings.cache_clear()
    try:
        yield path
    finally:
        del os.environ["DEMO_LOGINS_FILE"]
        get_settings.cache_clear()


@pytest.fixture()
def empty_engine(databases: Databases) -> Iterator[Engine]:
    """A database with no schema at all, which the application is pointed at."""
    name = f"{databases.run}_cli_{uuid.uuid4().hex[:8]}"
    engine = create_db_engine(databases.create_empty(name))
    use_engine(engine)
    try:
        yield engine
    finally:
        use_engine(None)
        engine.dispose()
        databases.drop(name)


def count(engine: Engine, model: type) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def user_row(engine: Engine, username: str) -> User | None:
    with engine.connect() as conn:
        row = conn.execute(select(User).where(col(User.username) == username)).first()
        return None if row is None else User.model_validate(row._mapping)


# --- usage errors ------------------------------------------------------------------------------------

def test_no_arguments_shows_help() -> None:
    result = run()
    out = said(result)
    assert "Usage: migrant" in out
    for name in ("migrate", "seed-demo", "create-user", "serve", "openapi", "audit-verify"):
        assert name in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "No such command 'frobnicate'"),
        (["create-user"], "Missing argument 'username'"),
        (["create-user", "bob", "--password", STRONG], "Missing option '--role'"),
        (["create-user", "bob", "--role", "wizard", "--password", STRONG],
         "role must be one of worker, supervisor, admin, auditor"),
        (["serve", "--port", "0"], "Invalid value for '--port'"),
        (["serve", "--port", "http"], "Invalid value for '--port'"),
        (["serve", "--workers", "1000"], "Invalid value for '--workers'"),
        (["seed-demo", "--size", "0"], "Invalid value for '--size'"),
        (["seed-demo", "--size", "many"], "Invalid value for '--size'"),
        (["seed-demo", "--colour", "red"], "No such option: --colour"),
        (["migrate", "head", "extra"], "unexpected extra argument"),
    ],
)
def test_bad_arguments_fail_clearly(engine: Engine, args: list[str], message: str) -> None:
    before = count(engine, User)
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert message in said(result)
    assert "Usage: migrant" in said(result)
    assert "Traceback" not in result.output
    assert count(engine, User) == before


# --- create-user -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("abc", "password_too_short"),
        ("lowercaseonly", "password_too_simple"),
        ("Password1!", "password_common"),
        ("Xbob-cleaner-99", "password_contains_username"),
    ],
)
def test_create_user_refuses_weak_password(engine: Engine, password: str, rule: str) -> None:
    result = run("create-user", "bob", "--role", "admin", "--password", password)
    assert result.exit_code == 2, result.output
    assert "error: weak_password" in result.stderr
    assert rule in result.stderr
    assert password not in result.output  # never echo a secret
    assert user_row(engine, "bob") is None


def test_create_user_weak_password_from_environment(engine: Engine) -> None:
    result = run("create-user", "bob", "--role", "admin", env={"NEW_USER_PASSWORD": "short"})
    assert result.exit_code == 2
    assert "weak_password" in result.stderr
    assert user_row(engine, "bob") is None


def test_create_user(engine: Engine, world: World) -> None:
    community = world.community("c1")
    result = run("create-user", "ops.worker", "--role", "worker", "--name", "值班专干",
                 "--division", community["path"], "--password", STRONG)
    assert result.exit_code == 0, result.output
    assert "created ops.worker (worker)" in result.output
    assert STRONG not in result.output
    user = user_row(engine, "ops.worker")
    assert user is not None and user.role == "worker" and user.display_name == "值班专干"
    assert user.password_hash and STRONG not in user.password_hash
    assert verify_password(STRONG, user.password_hash)
    with engine.connect() as conn:
        scopes = conn.execute(select(col(UserScope.division_id)).where(col(UserScope.user_id) == user.id)).scalars()
        assert list(scopes) == [community["id"]]


def test_create_user_prompts_for_the_password(engine: Engine) -> None:
    result = run("create-user", "night.admin", "--role", "admin", input=f"{STRONG}\n{STRONG}\n")
    assert result.exit_code == 0, result.output
    assert STRONG not in result.output
    assert user_row(engine, "night.admin") is not None


def test_create_user_without_stdin_aborts(engine: Engine) -> None:
    result = run("create-user", "night.admin", "--role", "admin", input="")
    assert result.exit_code != 0
    assert user_row(engine, "night.admin") is None


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["create-user", "worker1", "--role", "admin"], "username_taken"),
        (["create-user", "newbie", "--role", "worker", "--division", "/999999/"], "division_unknown"),
        (["create-user", "newbie", "--role", "admin", "--division", "410100"], "scope_invalid"),
    ],
)
def test_create_user_domain_errors_name_the_code(engine: Engine, args: list[str], code: str) -> None:
    before = count(engine, User)
    result = run(*args, "--password", STRONG)
    assert result.exit_code == 2, result.output
    assert f"error: {code}" in result.stderr
    assert count(engine, User) == before


# --- migrate + seed-demo -----------------------------------------------------------------------------

def test_migrate_then_seed_demo_is_idempotent(empty_engine: Engine, logins_file: Path) -> None:
    result = run("migrate")
    assert result.exit_code == 0, result.output
    assert "database at head" in result.output

    result = run("seed-demo", "--size", "1000")
    assert result.exit_code == 0, result.output
    assert "seeded" in result.output and str(logins_file) in result.output
    counts = {m.__name__: count(empty_engine, m) for m in (Division, Dwelling, User, UserScope)}
    assert counts["Division"] > 10 and counts["Dwelling"] > 0 and counts["User"] > 2

    # The logins file: private, one line per account, and the passwords really work.
    assert stat.S_IMODE(logins_file.stat().st_mode) == 0o600
    text = logins_file.read_text("utf-8")
    lines = [line.split("\t") for line in text.splitlines()]
    assert len(lines) == counts["User"]
    roles = {role for _, role, _ in lines}
    assert {"admin", "auditor", "supervisor", "worker"} <= roles
    for username, role, password in lines:
        if role in ("admin", "auditor"):
            user = user_row(empty_engine, username)
            assert user is not None and verify_password(password, user.password_hash)
            assert password in result.output  # printed for the person who ran `make run`

    # Again: nothing changes, the existing logins are kept and printed.
    again = run("seed-demo", "--size", "5000", "--seed", "1")
    assert again.exit_code == 0, again.output
    assert "already present" in again.output
    assert {m.__name__: count(empty_engine, m) for m in (Division, Dwelling, User, UserScope)} == counts
    assert logins_file.read_text("utf-8") == text
    admin_password = next(p for _, role, p in lines if role == "admin")
    assert admin_password in again.output

    shown = run("demo-logins")
    assert shown.exit_code == 0 and "admin" in shown.output


def test_seed_demo_keeps_existing_data(engine: Engine, logins_file: Path) -> None:
    """The per-test database already holds the demo city: seeding again adds nothing."""
    before = {m.__name__: count(engine, m) for m in (Division, Dwelling, User)}
    result = run("seed-demo")
    assert result.exit_code == 0, result.output
    assert "already present" in result.output
    assert {m.__name__: count(engine, m) for m in (Division, Dwelling, User)} == before
    assert not logins_file.exists()


def test_default_logins_file_is_under_data(logins_file: Path) -> None:
    del os.environ["DEMO_LOGINS_FILE"]
    get_settings.cache_clear()
    try:
        assert get_settings().demo_logins_file == ROOT / "data" / "demo-logins.txt"
    finally:
        os.environ["DEMO_LOGINS_FILE"] = str(logins_file)
        get_settings.cache_clear()


# --- other commands ----------------------------------------------------------------------------------

def test_openapi_to_stdout() -> None:
    result = run("openapi")
    assert result.exit_code == 0
    spec = json.loads(result.stdout)
    assert "/api/v1/auth/login" in spec["paths"]


def test_audit_verify_on_an_intact_chain(engine: Engine) -> None:
    result = run("audit-verify")
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output


def test_migrate_is_a_no_op_at_head(engine: Engine) -> None:
    result = run("migrate")
    assert result.exit_code == 0, result.output
    command.check(alembic_config(str(engine.url.render_as_string(hide_password=False))))


def test_housekeeping_prunes_ended_sessions_and_spent_counters(engine: Engine, world: World) -> None:
    """Counters past their window and sessions ended a month ago go; live ones and recent ones stay."""
    from datetime import timedelta

    from sqlalchemy import insert

    from app.auth.models import AuthSession, LoginThrottle, RefreshToken
    from app.core.types import utcnow
    from app.ledger.models import AuditEvent

    now = utcnow()
    user = world.users["worker1"]
    old, ended_recently, live = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(insert(AuthSession), [
            {"id": old, "user_id": user, "created_at": now - timedelta(days=60), "last_seen_at": now,
             "expires_at": now - timedelta(days=40), "revoked_at": None},
            {"id": ended_recently, "user_id": user, "created_at": now, "last_seen_at": now,
             "expires_at": now + timedelta(days=5), "revoked_at": now - timedelta(days=2)},
            {"id": live, "user_id": user, "created_at": now, "last_seen_at": now, "expires_at": now + timedelta(days=5),
             "revoked_at": None},
        ])
        conn.execute(insert(RefreshToken), [{"id": uuid.uuid4().hex, "session_id": old, "token_hash": "a" * 64,
                                             "created_at": now}])
        conn.execute(insert(LoginThrottle), [
            {"key": "spent", "failures": 3, "window_started_at": now - timedelta(days=1), "locked_until": None},
            {"key": "locked", "failures": 5, "window_started_at": now - timedelta(days=1),
             "locked_until": now + timedelta(minutes=5)},
            {"key": "fresh", "failures": 1, "window_started_at": now, "locked_until": None},
        ])
    with engine.connect() as conn:
        spent_before = conn.execute(select(func.count()).select_from(LoginThrottle).where(
            col(LoginThrottle.window_started_at) < now - timedelta(hours=1),
            col(LoginThrottle.locked_until).is_(None))).scalar_one()
    result = run("housekeeping")
    assert result.exit_code == 0, result.output
    assert f"removed {spent_before} sign-in counters and 1 ended login sessions" in said(result)
    with engine.connect() as conn:
        assert set(conn.execute(select(AuthSession.id).where(col(AuthSession.id).in_([old, ended_recently, live])))
                   .scalars()) == {ended_recently, live}
        assert conn.execute(select(func.count()).select_from(RefreshToken)
                            .where(col(RefreshToken.session_id) == old)).scalar_one() == 0
        assert set(conn.execute(select(LoginThrottle.key)).scalars()) >= {"locked", "fresh"}
        assert "spent" not in set(conn.execute(select(LoginThrottle.key)).scalars())
        assert conn.execute(select(func.count()).select_from(AuditEvent)
                            .where(col(AuditEvent.action) == "housekeeping.run")).scalar_one() == 1
