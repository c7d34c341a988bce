"""Strict JSON and protocol-version checks made before the SDK sees a request."""

from __future__ import annotations

import pytest

from mcp_bridge.http import wire


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"a": 1, "a": 1}', "duplicate key 'a'"),
        (b'{"x": [{"b": 1, "b": 2}]}', "duplicate key 'b'"),
        (b'{"id": NaN}', "NaN is not valid JSON"),
        (b'{"id": Infinity}', "Infinity is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"id": "\xff"}', "not valid JSON"),
        (b"", "not valid JSON"),
        (b'{"id": 1} {"id": 2}', "not valid JSON"),
    ],
    ids=["duplicate", "duplicate-nested", "nan", "infinity", "deep", "bad-utf8", "empty", "two-values"],
)
def test_loose_json_is_named(body: bytes, reason: str) -> None:
    problem = wire.json_problem(body)
    assert problem is not None and reason in problem


def test_strict_json_passes() -> None:
    assert (
        wire.json_problem(b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": [1.5, -2e3]}}')
        is None
    )


@pytest.mark.parametrize("value", [None, *wire.SUPPORTED_VERSIONS])
def test_absent_or_supported_versions_pass(value: str | None) -> None:
    assert wire.protocol_version_problem(value) is None


def test_an_unsupported_version_is_named_with_the_supported_ones_and_clipped() -> None:
    problem = wire.protocol_version_problem("2099-01-01\n" + "x" * 500)
    assert problem is not None and "'2099-01-01?" in problem and "x" * 40 not in problem
    assert problem.endswith(", ".join(wire.SUPPORTED_VERSIONS))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"jsonrpc": "2.0", "id": 301, "method": "server/discover"}, 301),
        ({"jsonrpc": "2.0", "id": "a-1", "method": "tools/list"}, "a-1"),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, None),
        ({"jsonrpc": "2.0", "id": True, "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": [1], "method": "ping"}, None),
        ({"jsonrpc": "2.0", "id": 3, "result": {}}, None),
        ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], None),
        (None, None),
    ],
)
def test_request_id_is_that_of_one_request(body: object, expected: object) -> None:
    assert wire.request_id(body) == expected


def test_unsupported_version_data_has_the_spec_layout() -> None:
    data = wire.unsupported_version_data("v999.0.0")
    assert data == {"supported": ["2026-07-28"], "requested": "v999.0.0"}
    assert wire.unsupported_version_data(None)["requested"] == ""
