"""Write batches (app/core/batches.py): one-record writes that arrive while a batch is being written
share the next transaction and its one commit, each under its own request's context; a job that fails there is
taken out (nothing of it kept) and its request told to run it alone; a commit that fails sends every job of its
batch to run alone. Through the test's real database, its ledger and its audit chain."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlmodel import Session

from app.core import context
from app.core.batches import RunAlone, WriteBatches, batches_of
from app.ledger import audit
from app.ledger.models import AuditEvent


@pytest.fixture()
def batches(engine: Engine) -> Iterator[WriteBatches]:
    found = batches_of(engine)
    assert found is not None
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE batch_probe (id TEXT PRIMARY KEY, request_id TEXT)"))
    yield found


def _probe(name: str, *, fail: bool = False) -> Callable[[Session], str]:
    """A one-record write: a row and an audit event, both named `name`; raises after writing them if `fail`."""

    def work(session: Session) -> str:
        session.execute(text("INSERT INTO batch_probe (id, request_id) VALUES (:id, :rid)"),
                        {"id": name, "rid": context.current().request_id})
        audit.record(session, "test.batch", target_type="batch_probe", target_id=name)
        if fail:
            raise ValueError("this job fails after writing")
        return f"answer of {name}"

    return work


def _submit(batches: WriteBatches, name: str, work: Callable[[Session], Any] | None = None) -> Future[Any]:
    token = context.set_current(context.RequestContext(request_id=f"request-{name}"))
    try:
        return batches.submit(work or _probe(name))
    finally:
        context.reset(token)


def _stored(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {row[0]: row[1] for row in conn.execute(text("SELECT id, request_id FROM batch_probe"))}


def _events(engine: Engine) -> dict[str, str | None]:
    with Session(engine) as session:
        rows = session.execute(select(AuditEvent.target_id, AuditEvent.request_id)
                               .where(AuditEvent.action == "test.batch")).all()
    return {str(target): request_id for target, request_id in rows}


def _commits(engine: Engine) -> list[int]:
    counted: list[int] = []
    event.listen(engine, "commit", lambda _conn: counted.append(1))
    return counted


def _blocked_first(batches: WriteBatches) -> tuple[Future[Any], threading.Event]:
    """A first job that holds the writer until released: whatever is submitted meanwhile waits for one batch."""
    started, release = threading.Event(), threading.Event()
    write = _probe("first")

    def slow(session: Session) -> str:
        started.set()
        assert release.wait(30)
        return write(session)

    first = _submit(batches, "first", slow)
    assert started.wait(30)
    return first, release


def test_writes_that_arrive_meanwhile_share_one_commit_each_under_its_own_request(
        engine: Engine, batches: WriteBatches) -> None:
    commits = _commits(engine)
    first, release = _blocked_first(batches)
    names = [f"visit-{n}" for n in range(6)]
    waiting = [_submit(batches, name) for name in names]
    assert not any(f.done() for f in waiting)  # queued, answered only once their batch is durable
    release.set()

    assert first.result(timeout=30) == "answer of first"
    assert [f.result(timeout=30) for f in waiting] == [f"answer of {name}" for name in names]
    assert len(commits) == 2  # the first job's transaction, then one for the six that waited
    expected = {name: f"request-{name}" for name in ["first", *names]}
    assert _stored(engine) == expected
    assert _events(engine) == expected  # each audit event names its own request, not the writer's or another's


def test_a_job_that_fails_is_taken_out_and_the_others_commit_without_it(engine: Engine, batches: WriteBatches) -> None:
    first, release = _blocked_first(batches)
    ok = [_submit(batches, "a"), _submit(batches, "b")]
    failing = _submit(batches, "bad", _probe("bad", fail=True))
    ok.append(_submit(batches, "c"))
    release.set()

    first.result(timeout=30)
    with pytest.raises(RunAlone):
        failing.result(timeout=30)
    assert [f.result(timeout=30) for f in ok] == ["answer of a", "answer of b", "answer of c"]
    assert set(_stored(engine)) == {"first", "a", "b", "c"}  # nothing of the failed job: its row nor its event
    assert set(_events(engine)) == {"first", "a", "b", "c"}


def test_a_batch_whose_commit_fails_sends_every_job_to_run_alone(engine: Engine, batches: WriteBatches) -> None:
    def refuse_commit(session: Session) -> str:
        event.listen(session, "before_commit", lambda _s: (_ for _ in ()).throw(OSError("disk failed")), once=True)
        return _probe("refuser")(session)

    first, release = _blocked_first(batches)
    doomed = [_submit(batches, "x"), _submit(batches, "refuser", refuse_commit), _submit(batches, "y")]
    release.set()

    first.result(timeout=30)
    for future in doomed:
        with pytest.raises(RunAlone):
            future.result(timeout=30)
    assert set(_stored(engine)) == {"first"} and set(_events(engine)) == {"first"}
    assert _submit(batches, "after").result(timeout=30) == "answer of after"  # the writer goes on


def test_a_writer_whose_rollback_fails_answers_every_job_and_goes_on(
        engine: Engine, batches: WriteBatches, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.db import UnitOfWork

    real = UnitOfWork.abandon

    def broken(self: UnitOfWork, **kwargs: Any) -> None:
        real(self, **kwargs)
        raise OSError("the connection died during the rollback")

    monkeypatch.setattr(UnitOfWork, "abandon", broken)
    with pytest.raises(RunAlone):  # no request waits for ever
        _submit(batches, "bad", _probe("bad", fail=True)).result(timeout=30)
    monkeypatch.setattr(UnitOfWork, "abandon", real)
    assert _submit(batches, "after").result(timeout=30) == "answer of after"  # the queue did not stop
    assert set(_stored(engine)) == {"after"}


def test_a_request_cancelled_while_it_waits_is_not_written(engine: Engine, batches: WriteBatches) -> None:
    first, release = _blocked_first(batches)
    gone, kept = _submit(batches, "gone"), _submit(batches, "kept")
    assert gone.cancel()
    release.set()

    first.result(timeout=30)
    assert kept.result(timeout=30) == "answer of kept"
    assert set(_stored(engine)) == {"first", "kept"}


def test_one_queue_per_database_and_none_for_an_in_memory_one(engine: Engine) -> None:
    assert batches_of(engine) is batches_of(engine) is not None
    memory = create_engine("sqlite://")
    try:
        assert batches_of(memory) is None  # an in-memory database is one per connection
    finally:
        memory.dispose()
    with Session(engine) as session:  # the chain the fixture verifies afterwards is untouched by this test
        assert session.execute(select(func.count()).select_from(AuditEvent)
                               .where(AuditEvent.action == "test.batch")).scalar_one() == 0
