"""Visit photos through the HTTP API: type by content, limits on both sides, storage on disk, access, audit."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import Engine

from app.core.config import Settings, get_settings
from tests.assertions import assert_error
from tests.conftest import Api, World
from tests.db import count, execute, rows
from tests.factories import post_visit, visit_body
from tests.visits import BLIND_TO_C1, SEES_C1, now, resident
from tests.visits.images import jpeg, jpeg_of_size, png, webp
from tests.visits.photo_helpers import on_disk, photo_rows, photos_url, stored_files, upload, uploaded

# --- helpers ------------------------------------------------------------------------------------------------


def read_events(engine: Engine, photo_id: str) -> list[dict[str, Any]]:
    return rows(engine, "SELECT * FROM audit_events WHERE action = 'visit_photo.read' AND target_id = :t",
                t=photo_id)


# --- upload -------------------------------------------------------------------------------------------------


def test_upload_stores_the_file_on_disk_and_metadata_in_the_database(
    api: Api, world: World, engine: Engine, settings: Settings, visit: dict[str, Any]
) -> None:
    data = png(3, 2, seed=1)
    body = uploaded(api, visit["id"], data, name="door.png", content_type="image/png", kind="dwelling")
    # What is stored is the re-encoded copy, named by its own SHA-256 (docs/visits.md).
    path = on_disk(settings, body["sha256"])
    stored = path.read_bytes()
    assert (body["visit_id"], body["kind"], body["content_type"], body["size_bytes"], body["sha256"]) == (
        visit["id"], "dwelling", "image/png", len(stored), hashlib.sha256(stored).hexdigest())
    assert (body["width"], body["height"], body["uploaded_by"]) == (3, 2, world.users["worker1"])
    with Image.open(io.BytesIO(stored)) as copy, Image.open(io.BytesIO(data)) as original:
        assert copy.format == "PNG" and copy.tobytes() == original.tobytes()  # PNG stays lossless
    digest = body["sha256"]
    assert not list(path.parent.glob(".upload-*"))  # no temporary file left behind
    [row] = photo_rows(engine, visit["id"])
    assert row["id"] == body["id"] and row["sha256"] == digest and row["area_path"] == resident(engine, world)[
        "area_path"]
    # The bytes are nowhere in the database: every column is a short scalar.
    assert all(not isinstance(v, bytes | memoryview) and len(str(v)) <= 120 for v in row.values())


@pytest.mark.parametrize(("data", "content_type", "size"), [
    (jpeg(64, 48), "image/jpeg", (64, 48)),
    (png(5, 7), "image/png", (5, 7)),
    (webp(80, 60), "image/webp", (80, 60)),
])
def test_type_is_decided_by_content(api: Api, settings: Settings, visit: dict[str, Any], data: bytes,
                                    content_type: str, size: tuple[int, int]) -> None:
    # The client's name and content type are ignored.
    body = uploaded(api, visit["id"], data, name="upload.bin", content_type="application/octet-stream")
    assert body["content_type"] == content_type
    assert (body["width"], body["height"]) == size
    with Image.open(on_disk(settings, body["sha256"])) as copy:  # stored in the format it came in
        assert (copy.get_format_mimetype(), copy.size) == (content_type, size)


@pytest.mark.parametrize("data", [
    b"just some text, not a photo",
    b"GIF89a\x01\x00\x01\x00\x00\x00\x00",
    b"RIFF\x24\x00\x00\x00WAVEfmt ",
    b"\x89PNG\r\n\x1a",  # one byte short of the PNG signature
    b"%PDF-1.7\n",
])
def test_spoofed_or_other_types_are_415(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any],
                                        data: bytes) -> None:
    before = stored_files(settings)
    assert_error(upload(api, visit["id"], data, name="photo.jpg", content_type="image/jpeg"), 415, "photo_type")
    assert photo_rows(engine, visit["id"]) == []
    assert stored_files(settings) == before


def test_empty_file_is_422(api: Api, engine: Engine, visit: dict[str, Any]) -> None:
    assert_error(upload(api, visit["id"], b""), 422, "photo_empty")
    assert photo_rows(engine, visit["id"]) == []


def test_size_limit_both_sides(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any]) -> None:
    limit = settings.photo_max_bytes
    body = uploaded(api, visit["id"], jpeg_of_size(limit))
    assert body["size_bytes"] < 10_000  # the copy keeps the picture, not the 5 MB of comment segments
    assert_error(upload(api, visit["id"], jpeg_of_size(limit + 1, seed=1)), 413, "photo_too_large")
    assert len(photo_rows(engine, visit["id"])) == 1


def test_request_far_over_the_limit_is_refused_before_reading(api: Api, engine: Engine, settings: Settings,
                                                              visit: dict[str, Any]) -> None:
    response = upload(api, visit["id"], jpeg_of_size(settings.photo_max_bytes + 200_000))
    assert response.status_code == 413 and response.json()["code"] in ("body_too_large", "photo_too_large")
    assert photo_rows(engine, visit["id"]) == []


def test_count_limit_both_sides(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "photo_max_per_visit", 2)
    uploaded(api, visit["id"], png(seed=1))
    uploaded(api, visit["id"], png(seed=2))
    before = stored_files(settings)
    assert_error(upload(api, visit["id"], png(seed=3)), 409, "photo_limit")
    assert len(photo_rows(engine, visit["id"])) == 2
    assert stored_files(settings) == before


def test_default_count_limit(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any]) -> None:
    for i in range(settings.photo_max_per_visit):
        uploaded(api, visit["id"], png(seed=10 + i))
    assert_error(upload(api, visit["id"], png(seed=99)), 409, "photo_limit")
    assert len(photo_rows(engine, visit["id"])) == settings.photo_max_per_visit


def test_same_content_is_stored_once(api: Api, world: World, engine: Engine, settings: Settings,
                                     visit: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    data = png(seed=42)
    first = uploaded(api, visit["id"], data)
    # A retry (the response was lost) answers the stored photo and adds nothing, even at the limit.
    monkeypatch.setattr(settings, "photo_max_per_visit", 1)
    again = upload(api, visit["id"], data)
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert len(photo_rows(engine, visit["id"])) == 1
    # The same picture on another visit is a new photo sharing one file.
    other = post_visit(api, visit_body(resident(engine, world, skip=1), mode="phone", checkin=None))
    second = uploaded(api, other["id"], data)
    assert second["id"] != first["id"] and second["sha256"] == first["sha256"]
    assert sorted(stored_files(settings)).count(first["sha256"]) == 1


def test_upload_window_both_sides(api: Api, engine: Engine, settings: Settings, visit: dict[str, Any]) -> None:
    hours = settings.photo_upload_hours
    execute(engine, "UPDATE visits SET received_at = :t WHERE id = :v",
            t=now() - timedelta(hours=hours) + timedelta(minutes=5), v=visit["id"])
    uploaded(api, visit["id"], png(seed=1))
    execute(engine, "UPDATE visits SET received_at = :t WHERE id = :v",
            t=now() - timedelta(hours=hours) - timedelta(minutes=1), v=visit["id"])
    assert_error(upload(api, visit["id"], png(seed=2)), 409, "photo_window_closed")
    assert len(photo_rows(engine, visit["id"])) == 1


@pytest.mark.parametrize(("user", "status", "code"), [
    ("sup_street", 403, "not_visit_author"), ("sup_district", 403, "not_visit_author"),
    ("admin", 403, "not_visit_author"), ("auditor", 403, "forbidden"),
    ("worker2", 404, "not_found"), ("worker3", 404, "not_found"), ("sup_other", 404, "not_found"),
])
def test_only_the_author_uploads(api: Api, engine: Engine, visit: dict[str, Any], user: str, status: int,
                                 code: str) -> None:
    assert_error(upload(api, visit["id"], png(), user=user), status, code)
    assert photo_rows(engine, visit["id"]) == []


def test_unknown_visit_is_404(api: Api) -> None:
    assert_error(upload(api, "no-such-visit-0000", png()), 404, "not_found")
    assert_error(api.as_("worker1", "GET", photos_url("no-such-visit-0000")), 404, "not_found")


@pytest.mark.parametrize("form", [{"kind": "selfie"}, {}])
def test_kind_is_required_and_checked(api: Api, engine: Engine, visit: dict[str, Any], form: dict[str, str]) -> None:
    response = api.as_("worker1", "POST", photos_url(visit["id"]), data=form,
                       files={"file": ("a.png", png(), "image/png")})
    assert_error(response, 422, "validation_error")
    assert photo_rows(engine, visit["id"]) == []


def test_file_is_required(api: Api, visit: dict[str, Any]) -> None:
    response = api.as_("worker1", "POST", photos_url(visit["id"]), data={"kind": "other"})
    assert_error(response, 422, "validation_error")


# --- list and download --------------------------------------------------------------------------------------


def test_list_for_those_who_see_the_visit(api: Api, visit: dict[str, Any]) -> None:
    first = uploaded(api, visit["id"], png(seed=1), kind="dwelling")
    second = uploaded(api, visit["id"], jpeg(), kind="document")
    for user in SEES_C1:
        response = api.as_(user, "GET", photos_url(visit["id"]))
        assert response.status_code == 200, (user, response.text)
        assert [(p["id"], p["kind"]) for p in response.json()] == [(first["id"], "dwelling"),
                                                                    (second["id"], "document")]
    for user in BLIND_TO_C1:
        assert_error(api.as_(user, "GET", photos_url(visit["id"])), 404, "not_found")
    assert_error(api.as_("auditor", "GET", photos_url(visit["id"])), 403, "forbidden")


def test_download_is_served_safely_and_audited(api: Api, world: World, engine: Engine,
                                               visit: dict[str, Any]) -> None:
    data = webp()
    photo = uploaded(api, visit["id"], data)
    url = f"{photos_url(visit['id'])}/{photo['id']}"
    assert read_events(engine, photo["id"]) == []
    response = api.as_("sup_street", "GET", url)
    assert response.status_code == 200
    assert response.content == on_disk(get_settings(), photo["sha256"]).read_bytes()  # the stored copy
    assert response.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(response.content)) as copy:
        assert (copy.format, copy.size) == ("WEBP", (80, 60))
    # The security middleware answers every API response with `Cache-Control: no-store` (stricter).
    assert "no-store" in {v.strip() for v in response.headers["cache-control"].split(",")}
    assert response.headers["x-content-type-options"] == "nosniff"
    [event] = read_events(engine, photo["id"])
    assert event["actor_id"] == world.users["sup_street"] and event["outcome"] == "success"
    assert event["target_type"] == "visit_photos" and visit["id"] in (event["detail"] or "")
    for user in BLIND_TO_C1:
        assert_error(api.as_(user, "GET", url), 404, "not_found")
    assert_error(api.as_("auditor", "GET", url), 403, "forbidden")
    assert len(read_events(engine, photo["id"])) == 1


def test_download_errors(api: Api, world: World, engine: Engine, settings: Settings,
                         visit: dict[str, Any]) -> None:
    photo = uploaded(api, visit["id"], png(seed=5))
    other = post_visit(api, visit_body(resident(engine, world, skip=1), mode="phone", checkin=None))
    # A photo is only reachable through its own visit.
    assert_error(api.as_("worker1", "GET", f"{photos_url(other['id'])}/{photo['id']}"), 404, "not_found")
    assert_error(api.as_("worker1", "GET", f"{photos_url(visit['id'])}/{'0' * 32}"), 404, "not_found")
    # Metadata whose file is gone (a lost volume) is a 404, never a 500.
    on_disk(settings, photo["sha256"]).unlink()
    assert_error(api.as_("worker1", "GET", f"{photos_url(visit['id'])}/{photo['id']}"), 404, "not_found")
    assert read_events(engine, photo["id"]) == []
    # Sending the same content again puts the file back.
    assert upload(api, visit["id"], png(seed=5)).status_code == 200
    assert api.as_("worker1", "GET", f"{photos_url(visit['id'])}/{photo['id']}").status_code == 200
    assert count(engine, "visit_photos") == 1
