"""Every error the places domain can answer with has a stable code and an English and a Chinese message."""

from __future__ import annotations

import re

from app.core import tabular
from app.core.errors import AppError
from app.places import errors, importer


def test_error_classes_are_complete() -> None:
    classes = [obj for module in (errors, importer, tabular) for obj in vars(module).values()
               if isinstance(obj, type) and issubclass(obj, AppError) and obj.__module__ == module.__name__]
    assert len(classes) >= 20
    codes = [cls.code for cls in classes]
    assert len(set(codes)) == len(codes), codes
    for cls in classes:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", cls.code), cls
        assert 400 <= cls.status < 500, cls
        assert cls.en and not re.search(r"[\u4e00-\u9fff]", cls.en), cls
        assert re.search(r"[\u4e00-\u9fff]", cls.zh), cls
        assert cls.code not in {"bad_request", "conflict", "invalid"}, cls  # each names its own rule


def test_row_messages_exist_in_both_languages() -> None:
    for code, (en, zh) in importer.ROW_MESSAGES.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", code) and en and re.search(r"[\u4e00-\u9fff]", zh)
