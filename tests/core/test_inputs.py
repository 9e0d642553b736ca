"""app.core.inputs: ASCII-only numbers and the JSON depth read without parsing (the API tests use them
through the routes; these pin the helpers themselves, with hypothesis for the depth)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.inputs import JSON_MAX_DEPTH, JsonTooDeep, ascii_int, check_json_depth, json_depth, loads_json


@pytest.mark.parametrize(("raw", "value"), [
    ("0", 0), ("12", 12), ("000123", 123), ("9" * 18, int("9" * 18)),
    ("", None), ("9" * 19, None), ("²", None), ("١٢", None), ("１２", None), ("৭", None), (" 12", None),
    ("12 ", None), ("+12", None), ("-1", None), ("1_000", None), ("1e3", None), ("0x1f", None), ("12\n", None),
])
def test_ascii_int_reads_ascii_digits_only(raw: str, value: int | None) -> None:
    assert ascii_int(raw) == value


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


# Strings full of what the scan must see through: brackets, quotes, backslashes, escapes, non-ASCII.
tricky_text = st.text(alphabet=st.sampled_from(list('[]{}"\\/\n\tab 名\u2028\x00')), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_json_depth_matches_the_parsed_value(value: Any) -> None:
    expected = depth_of(value)
    for text in (orjson.dumps(value), json.dumps(value), json.dumps(value, ensure_ascii=False, indent=1)):
        assert json_depth(text) == expected, text


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 60), tricky_text)
def test_check_json_depth_refuses_only_past_the_limit(depth: int, text: str) -> None:
    value: Any = text
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    raw = orjson.dumps(value)
    if depth > JSON_MAX_DEPTH:
        with pytest.raises(JsonTooDeep):
            check_json_depth(raw)
        with pytest.raises(JsonTooDeep):
            loads_json(raw)
    else:
        check_json_depth(raw)
        assert loads_json(raw) == value


def test_brackets_in_strings_do_not_count() -> None:
    assert json_depth('["' + "[" * 5000 + '"]') == 1
    assert json_depth('{"a": "\\"' + "{" * 5000 + '", "b": [[]]}') == 3
    loads_json('["' + "[" * 5000 + '"]')  # deep-looking text inside a string is fine


def test_strings_next_to_each_other_keep_their_brackets_inside() -> None:
    # Empty and bracket-free strings drop out as pairs of quotes first; what is left must still pair up.
    assert json_depth('["", "[", "", "]", {"": ""}]') == 2
    assert json_depth('[{"a": "]]", "b": "", "c": "[["}, [[""]]]') == 3
    assert json_depth('["\\"[", "\\\\", [""]]') == 2


def test_a_deep_tail_in_a_long_text_is_still_counted_exactly() -> None:
    # Each pass takes one level off; past the passes' budget the count goes bracket by bracket.
    long_and_shallow = "[" + "[1]," * 50_000 + "[" * 40 + "]" * 40 + "]"
    assert json_depth(long_and_shallow) == 41
    unbalanced = "[" * 100_000 + "[" * 60 + "]" * 60
    assert json_depth(unbalanced) == 100_060
    assert json_depth("[}") == 1 and json_depth("]]][") == -1 and json_depth("") == 0


def test_far_too_deep_is_refused_before_any_parser_recurses() -> None:
    for text in ("[" * 1500 + "]" * 1500, "[" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000):
        with pytest.raises(JsonTooDeep):
            loads_json(text)
    with pytest.raises(ValueError):  # not JSON at all: the parser's own error
        loads_json("[1, 2")
