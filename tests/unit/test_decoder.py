"""api/decoder: JSON from clients refused where Go's encoding/json refuses it, and mended where Go mends it."""

from __future__ import annotations

import json
import time

import pytest

from dockyard.api.decoder import (
    MAX_DEPTH,
    TRAILING_CONTENT,
    JsonError,
    check_depth,
    decode,
    deep_query_value,
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": NaN}', "invalid character 'N' looking for beginning of value"),
        ("[Infinity]", "invalid character 'I' looking for beginning of value"),
        ("[-Infinity]", "invalid character 'I' in numeric literal"),
        ('{"HostConfig": {"Memory": 1e400}}', "json: cannot unmarshal number 1e400 into Go value of type float64"),
        ("[-1e400]", "json: cannot unmarshal number -1e400 into Go value of type float64"),
        ("[" + "9" * 500 + "]",
         "json: cannot unmarshal number 99999999999999999999...9999999999 into Go value of type float64"),
        ("[" * 100_000 + "]" * 100_000, "invalid character '[' exceeded max depth"),
        ('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1), "invalid character '{' exceeded max depth"),
        ("{} {}", TRAILING_CONTENT),
        ('{"a": 1} x', TRAILING_CONTENT),
    ],
)  # fmt: skip
def test_refused_as_go_refuses(text: str, message: str) -> None:
    with pytest.raises(JsonError) as caught:
        decode(text.encode())
    assert str(caught.value) == message


@pytest.mark.parametrize("text", ["{", '{"a" 1}', "", "[1,]", '{"a": "\\x"}', "\ufeff{}"])
def test_malformed_json_is_a_json_error(text: str) -> None:
    with pytest.raises(JsonError):
        decode(text)


def test_depth_limit_is_exact() -> None:
    assert decode("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None
    with pytest.raises(JsonError):
        decode("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = json.dumps({"Cmd": ["[" * 5000, "{" * 5000, '\\"[[[' * 100]})
    assert decode(text)["Cmd"][0] == "[" * 5000


def test_many_shallow_brackets_are_fine() -> None:
    doc = decode("[" + ",".join(["[]"] * 10_000) + "]")
    assert len(doc) == 10_000


def test_depth_check_is_cheap_for_big_bodies() -> None:
    text = "[" + "[]," * 2_000_000 + "[]]"  # 6 MB, 4 million brackets
    started = time.process_time()
    check_depth(text)
    assert time.process_time() - started < 2.0  # a Python loop over it takes several times that


def test_numbers_within_range() -> None:
    assert decode('{"a": 1e308, "b": -9223372036854775808, "c": 18446744073709551615, "d": 0.5}') == {
        "a": 1e308, "b": -(2**63), "c": 2**64 - 1, "d": 0.5}  # fmt: skip


def test_lone_surrogates_become_u_fffd_as_in_go() -> None:
    doc = decode(b'{"Env": ["A=\\ud800", "B=\\udfff\\ud800x"], "\\ud801": 1, "ok": "\\ud83d\\ude00"}')
    assert doc == {"Env": ["A=\ufffd", "B=\ufffd\ufffdx"], "\ufffd": 1, "ok": "\U0001f600"}
    json.dumps(doc).encode()
    "".join(doc["Env"]).encode("utf-8")  # no UnicodeEncodeError later


def test_invalid_utf8_becomes_u_fffd_as_in_go() -> None:
    assert decode(b'{"a": "x\xff\xfey"}') == {"a": "x\ufffd\ufffdy"}
    assert decode(b'{"a": "\xed\xa0\x80"}')["a"].encode("utf-8")  # an encoded surrogate is mended too


def test_deep_query_value() -> None:
    assert deep_query_value({"filters": ('{"label":["a=b"]}',), "all": ("1",)}) is None
    assert deep_query_value({"all": ("1",), "filters": ("[" * 500,)}) == "filters"
    assert deep_query_value({"x": ("", "{" * (MAX_DEPTH + 1))}) == "x"
