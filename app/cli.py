"""Command line: serve, migrate, seed-demo, create-user, openapi, audit-verify, audit-checkpoint, audit-keygen,
audit-public-keys, audit-purge, retention-run, tasks-generate, cycle-open, outbox-run."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from alembic import command
from alembic.config import Config

from app.core.config import ROOT, get_settings

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="Migrant services backend.")


@cli.callback()
def _wire() -> None:
    """Before any command: the ledger and the domains' event subscriptions (app/wiring.py)."""
    from app import wiring

    wiring.install()


def demo_logins_file() -> Path:
    """Where the demo logins are kept (DEMO_LOGINS_FILE; default data/demo-logins.txt)."""
    return get_settings().demo_logins_file


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    if url:
        cfg.attributes["url"] = url
    return cfg


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Bring the database schema to REVISION (default: head)."""
    command.upgrade(alembic_config(), revision)
    typer.echo(f"database at {revision}")


@cli.command("seed-demo")
def seed_demo(
    size: Annotated[int, typer.Option(min=1, max=5_000_000, help="Target number of residents")] = 1000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same places)")] = 20261129,
) -> None:
    """Load the demo city once; print the demo logins (kept in data/demo-logins.txt)."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app.core.db import unit_of_work
    from app.demo.seed import already_seeded
    from app.demo.seed import seed_demo as run_seed

    started = time.perf_counter()
    with unit_of_work() as session:
        if already_seeded(session):
            typer.echo("demo data already present; keeping it")
            _print_logins()
            return
        # A progress bar with the rate (shown on a terminal only; nothing is printed into a pipe or a log).
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), transient=True) as bar:
            task = bar.add_task("residents", total=size, rate="")

            def progress(done: int, total: int) -> None:
                elapsed = max(time.perf_counter() - started, 1e-6)
                bar.update(task, completed=done, rate=f"{done / elapsed:,.0f}/s")
                if done >= total:
                    bar.update(task, description="indexes, commit")

            result = run_seed(session, size=size, seed=seed, progress=progress)
    elapsed = max(time.perf_counter() - started, 1e-6)
    path = demo_logins_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created private (0600) from the start: the file holds working passwords.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(f"{u}\t{r}\t{p}\n" for u, r, p in result.logins))
    path.chmod(0o600)
    typer.echo(f"seeded {result.divisions} divisions, {result.dwellings} dwellings, {len(result.logins)} users, "
               f"{result.residents} residents ({result.key_persons} key persons), {result.landlords} landlords, "
               f"{result.visits} visits ({result.service_deliveries} services delivered), {result.tasks} tasks "
               f"in {elapsed:.1f} s ({result.residents / elapsed:,.0f} residents/s)")
    _print_logins()


def _print_logins(limit: int = 8) -> None:
    path = demo_logins_file()
    if not path.exists():
        return
    lines = path.read_text("utf-8").splitlines()
    typer.echo(f"\nDemo logins (all of them are in {path}):")
    picks = [ln for ln in lines if ln.split("\t")[1] in ("admin", "auditor")]
    picks += [ln for ln in lines if ln.split("\t")[1] == "supervisor"][:2]
    picks += [ln for ln in lines if ln.split("\t")[1] == "worker"][: max(1, limit - len(picks))]
    for line in picks:
        username, role, password = line.split("\t")
        typer.echo(f"  {role:<11} {username:<20} {password}")
    partners = [ln.split("\t") for ln in lines if ln.split("\t")[1] in ("police", "outflow_city", "landlord")]
    if partners:
        typer.echo("Partners (docs/sharing.md): a police station and an outflow city sign in with client credentials "
                   "(POST /api/v1/partner/oauth/token), a landlord with phone and password (POST /api/v1/auth/login):")
        for username, role, secret in partners:
            typer.echo(f"  {role:<12} {username:<20} {secret}")
    typer.echo("")


@cli.command("demo-logins")
def demo_logins() -> None:
    """Print the demo logins again."""
    _print_logins()


@cli.command("create-user")
def create_user(
    username: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Option(help="worker, supervisor, admin or auditor")],
    display_name: Annotated[str, typer.Option("--name")] = "",
    division: Annotated[list[str] | None, typer.Option(help="Division path or code to assign (repeat)")] = None,
    password: Annotated[str | None, typer.Option(envvar="NEW_USER_PASSWORD", help="Prompted when omitted")] = None,
) -> None:
    """Create an account (the first admin of a new installation, for instance)."""
    from app.accounts import service as users_service
    from app.core.actor import STAFF_ROLES, Role
    from app.core.db import unit_of_work
    from app.core.errors import AppError

    if role not in {r.value for r in STAFF_ROLES}:
        raise typer.BadParameter(f"role must be one of {', '.join(r.value for r in STAFF_ROLES)}")
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with unit_of_work() as session:
            ids = users_service.resolve_divisions(session, division or [])
            user = users_service.create_user(session, username=username, display_name=display_name or username,
                                             role=Role(role), password=password, division_ids=ids)
    except AppError as exc:
        typer.echo(f"error: {exc.code}: {exc.message('en')} {json.dumps(exc.details) if exc.details else ''}",
                   err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {user.username} ({user.role})")


@cli.command()
def openapi(out: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None) -> None:
    """Print (or write) the OpenAPI document generated from the code."""
    from app.main import app

    text = json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if out:
        out.write_text(text, "utf-8")
    else:
        sys.stdout.write(text)


@cli.command("audit-verify")
def audit_verify(
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", exists=True, dir_okay=False, help="A checkpoint file (audit-checkpoint --out): the chain "
        "must still hold its head unchanged")] = None,
    public_key: Annotated[str | None, typer.Option(
        "--public-key", help="The signing key's public half (base64) you were given; default: the configured key")]
    = None,
) -> None:
    """Walk the audit hash chain; exit 1 and name the first broken row if it does not verify.

    With --checkpoint, also check the checkpoint's signature and that the row it names is still there with the
    same hash: a chain cut short, or rewritten with every later hash recomputed, fails here."""
    from app.ledger.audit import verify_snapshot

    if checkpoint is not None:
        _verify_checkpoint(checkpoint, public_key)
        return
    report = verify_snapshot()
    if report.first_broken_id is None:
        head = f"; newest row {report.last_id} hash {report.last_hash}" if report.last_id is not None else ""
        typer.echo(f"audit chain intact: {report.checked} rows{head}")
        return
    typer.echo(f"audit chain broken at row {report.first_broken_id}: {report.reason}", err=True)
    raise typer.Exit(1)


def _verify_checkpoint(path: Path, public_key: str | None) -> None:
    from sqlmodel import Session

    from app.core.db import begin, get_engine, reading
    from app.ledger import checkpoints

    try:
        doc = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError):
        typer.echo(f"error: {path} is not a checkpoint file (JSON)", err=True)
        raise typer.Exit(2) from None
    with Session(reading(get_engine())) as session:
        begin(session, write=False)
        try:
            report = checkpoints.verify(session, doc, public_key=public_key)
        finally:
            session.rollback()
    if not report.ok:
        typer.echo(f"audit chain does not match checkpoint {doc.get('checkpoint_id')}: {report.reason}", err=True)
        raise typer.Exit(1)
    checked = report.chain.checked if report.chain else 0
    typer.echo(f"audit chain intact: {checked} rows; checkpoint {doc.get('checkpoint_id')} (row {doc.get('last_id')}, "
               f"signed {doc.get('signed_at')} by key {doc.get('key_id')}) holds" + (
                   f" ({report.reason})" if report.reason else ""))


@cli.command("audit-checkpoint")
def audit_checkpoint(
    out: Annotated[Path | None, typer.Option("--out", help="Also write the checkpoint file here")] = None,
) -> None:
    """Sign the audit chain's head now (run it from cron, e.g. hourly); keep the files outside the system."""
    from app.core.db import unit_of_work
    from app.ledger import checkpoints

    with unit_of_work() as session:
        cp = checkpoints.create(session, via="cli")
        doc = checkpoints.document(cp)
    if out is not None:
        out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", "utf-8")
    typer.echo(f"checkpoint {doc['checkpoint_id']}: row {doc['last_id']} hash {doc['last_hash']} "
               f"signed by key {doc['key_id']}" + (f", written to {out}" if out else ""))


@cli.command("audit-keygen")
def audit_keygen(kid: Annotated[str, typer.Option("--kid", help="Key id (≤ 20 characters)")] = "k1") -> None:
    """Print a new Ed25519 key for AUDIT_SIGNING_KEYS (keep it secret) and its public key (give it out)."""
    from app.ledger.checkpoints import new_key_line

    if not 1 <= len(kid) <= 20 or ":" in kid or "," in kid:
        raise typer.BadParameter("--kid: 1-20 characters, no ':' or ','")
    line, public = new_key_line(kid)
    typer.echo(f"AUDIT_SIGNING_KEYS={line}\npublic key ({kid}): {public}")


@cli.command("audit-public-keys")
def audit_public_keys() -> None:
    """Print the public half of every configured checkpoint signing key (for outside parties to pin)."""
    from app.ledger.checkpoints import public_keys

    for kid, public in public_keys().items():
        typer.echo(f"{kid}\t{public}")


@cli.command("audit-purge")
def audit_purge(
    older_than_days: Annotated[int, typer.Option(
        "--older-than-days", min=0, max=36_500,
        help="Delete audit records older than this many days (at least AUDIT_RETENTION_DAYS, >= 180)")],
) -> None:
    """Delete audit records past retention; the purge itself is recorded and anchors the kept chain.

    There is no HTTP endpoint for this: purging is an operator's act on the host, not an admin's or an
    auditor's (separation of duties).
    """
    import getpass
    from datetime import timedelta

    from app.core.db import unit_of_work
    from app.core.errors import AppError
    from app.ledger.audit import db_now, purge

    try:
        operator = getpass.getuser()[:64]
    except (OSError, KeyError):
        operator = "unknown"
    try:
        with unit_of_work() as session:
            cutoff = db_now(session) - timedelta(days=older_than_days)
            result = purge(session, cutoff, detail={"via": "cli", "os_user": operator})
    except AppError as exc:
        typer.echo(f"error: {exc.code}: {exc.message('en')} {json.dumps(exc.details) if exc.details else ''}",
                   err=True)
        raise typer.Exit(2) from None
    if result.deleted:
        typer.echo(f"purged {result.deleted} audit rows recorded before {result.cutoff.isoformat()}; "
                   f"the chain now starts after row {result.anchor_id}")
    else:
        typer.echo(f"nothing to purge before {result.cutoff.isoformat()}")


@cli.command("retention-run")
def retention_run(
    years: Annotated[int | None, typer.Option(
        "--years", help="Anonymise residents who left more than this many years ago (default RETENTION_YEARS)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count who is due; change nothing")] = False,
) -> None:
    """Anonymise residents who left long ago (PIPL storage limitation); the audit log is never touched."""
    from app.core.db import unit_of_work
    from app.people.retention import anonymise

    n = get_settings().retention_years if years is None else years
    if n < 1:
        typer.echo(f"error: --years must be at least 1 (got {n}): a retention period cannot be shorter than a year",
                   err=True)
        raise typer.Exit(2)
    with unit_of_work(write=not dry_run) as session:
        result = anonymise(session, n, dry_run=dry_run)
    if dry_run:
        typer.echo(f"{result.residents} residents left before {result.cutoff.isoformat()} are due (dry run)")
        return
    typer.echo(f"anonymised {result.residents} residents who left before {result.cutoff.isoformat()} "
               f"({result.health_records} health records deleted, {result.fp_documents} 婚育证明 numbers, "
               f"{result.correction_requests} correction requests and {result.transfer_requests} transfer "
               "reasons cleared)")


@cli.command()
def housekeeping() -> None:
    """Drop bookkeeping that no longer matters: sign-in counters past their window and lock, login sessions
    ended more than SESSION_KEEP_DAYS ago (their refresh tokens go with them). Run daily; audited."""
    from app.auth.service import prune_sessions, prune_throttle
    from app.core.db import unit_of_work
    from app.ledger import audit

    settings = get_settings()
    with unit_of_work() as session:
        counters = prune_throttle(session, settings)
        sessions = prune_sessions(session)
        audit.record(session, "housekeeping.run", target_type="auth_sessions",
                     detail={"throttle_rows": counters, "sessions": sessions})
    typer.echo(f"removed {counters} sign-in counters and {sessions} ended login sessions")


@cli.command("tasks-generate")
def tasks_generate(
    month: Annotated[str | None, typer.Option(
        "--month", help="City month YYYY-MM (default: the current one, UTC+8)")] = None,
) -> None:
    """Create the month's key-person visit tasks city-wide; run daily (idempotent, catches new key persons)."""
    import re

    from app.core.db import unit_of_work
    from app.core.errors import AppError
    from app.core.types import city_today
    from app.cycle.periods import month_of
    from app.cycle.tasks.service import generate_monthly
    from app.ledger import audit

    month = month or month_of(city_today())
    if not re.fullmatch(r"20[0-9]{2}-(0[1-9]|1[0-2])", month):
        typer.echo(f"error: --month must be YYYY-MM (got {month!r})", err=True)
        raise typer.Exit(2)
    try:
        with unit_of_work() as session:
            counts = generate_monthly(session, month, None)
            audit.record(session, "tasks.generate", target_type="tasks",
                         detail={"month": month, "via": "cli", **counts.as_dict()})
    except AppError as exc:
        typer.echo(f"error: {exc.code}: {exc.message('en')}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{month}: {counts.created} key-person tasks created ({counts.completed_by_visits} already done by "
               f"visits), {counts.existing} existed")


@cli.command("cycle-open")
def cycle_open(
    month: Annotated[str | None, typer.Option(
        "--month", help="City month YYYY-MM (default: the current one, UTC+8)")] = None,
    district: Annotated[str | None, typer.Option("--district", help="Only this district (6-digit code)")] = None,
) -> None:
    """Open the month's verification (月核查) city-wide: periods and pending verifications; run daily (idempotent)."""
    import re

    from app.core.db import unit_of_work
    from app.core.errors import AppError
    from app.core.types import city_today
    from app.cycle.periods import month_of
    from app.cycle.verification.opening import open_month
    from app.ledger import audit

    month = month or month_of(city_today())
    if not re.fullmatch(r"20[0-9]{2}-(0[1-9]|1[0-2])", month) or (
            district is not None and not re.fullmatch(r"[0-9]{6}", district)):
        typer.echo("error: --month must be YYYY-MM and --district 6 digits", err=True)
        raise typer.Exit(2)
    try:
        with unit_of_work() as session:
            counts = open_month(session, month, None, district)
            audit.record(session, "cycle.open", target_type="periods",
                         detail={"month": month, "district_code": district, "via": "cli", **vars(counts)})
    except AppError as exc:
        typer.echo(f"error: {exc.code}: {exc.message('en')}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{month}: {counts.periods_created} periods opened ({counts.periods_existing} existed), "
               f"{counts.verifications_created} verifications created")


@cli.command("outbox-run")
def outbox_run(
    once: Annotated[bool, typer.Option("--once", help="Stop when nothing is due (default: run until stopped)")] = False,
    poll: Annotated[float, typer.Option(min=0.05, max=60, help="Seconds to wait when nothing is due")] = 1.0,
) -> None:
    """Deliver the outbox's webhook events (docs/sharing.md, "Push delivery"); SIGTERM or Ctrl-C stops it."""
    import signal
    import threading

    from app.sharing.webhooks import delivery

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    purged = delivery.purge()
    claimed = delivery.run(once=once, poll_seconds=poll, stop=stop)
    typer.echo(f"outbox: {claimed} events attempted, {purged} old delivered events purged")


@cli.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    get_settings().check_production()
    # No access log: request lines carry query strings, which can hold names or ID numbers.
    uvicorn.run("app.main:app", host=host, port=port, workers=workers, proxy_headers=False, access_log=False,
                timeout_worker_healthcheck=60, log_level=os.environ.get("UVICORN_LOG_LEVEL", "info"))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
