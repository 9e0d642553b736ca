"""Command line: serve, migrate, seed-demo, create-user, openapi, audit-verify, audit-purge."""

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
DEMO_LOGINS = ROOT / "data" / "demo-logins.txt"


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
    from app.core.db import unit_of_work
    from app.demo.seed import already_seeded, seed_demo as run_seed

    with unit_of_work() as session:
        if already_seeded(session):
            typer.echo("demo data already present; keeping it")
            _print_logins()
            return
        result = run_seed(session, size=size, seed=seed)
    DEMO_LOGINS.parent.mkdir(parents=True, exist_ok=True)
    DEMO_LOGINS.write_text("".join(f"{u}\t{r}\t{p}\n" for u, r, p in result.logins), "utf-8")
    DEMO_LOGINS.chmod(0o600)
    typer.echo(f"seeded {result.divisions} divisions, {result.dwellings} dwellings, {len(result.logins)} users")
    _print_logins()


def _print_logins(limit: int = 8) -> None:
    if not DEMO_LOGINS.exists():
        return
    lines = DEMO_LOGINS.read_text("utf-8").splitlines()
    typer.echo("\nDemo logins (all of them are in data/demo-logins.txt):")
    picks = [ln for ln in lines if ln.split("\t")[1] in ("admin", "auditor")]
    picks += [ln for ln in lines if ln.split("\t")[1] == "supervisor"][:2]
    picks += [ln for ln in lines if ln.split("\t")[1] == "worker"][: max(1, limit - len(picks))]
    for line in picks:
        username, role, password = line.split("\t")
        typer.echo(f"  {role:<11} {username:<20} {password}")
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
    from app.auth import users_service
    from app.auth.models import STAFF_ROLES, Role
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
def audit_verify() -> None:
    """Walk the audit hash chain; exit 1 and name the first broken row if it does not verify."""
    from app.audit.service import verify_chain
    from app.core.db import unit_of_work

    with unit_of_work(write=False) as session:
        report = verify_chain(session)
    if report.first_broken_id is None:
        typer.echo(f"audit chain intact: {report.checked} rows")
        return
    typer.echo(f"audit chain broken at row {report.first_broken_id}: {report.reason}", err=True)
    raise typer.Exit(1)


@cli.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64)] = 1,
) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    get_settings().check_production()
    uvicorn.run("app.main:app", host=host, port=port, workers=workers, proxy_headers=False,
                log_level=os.environ.get("UVICORN_LOG_LEVEL", "info"))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
