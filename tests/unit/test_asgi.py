"""The aiohttp→ASGI bridge: scope, streamed body, responses, disconnects, backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import anyio
import pytest
from _bare import wait_for
from aiohttp import web

from mcp_bridge.http.asgi import AsgiExchange, Message, Receive, Scope, Send, call_asgi

pytestmark = pytest.mark.anyio

App = Callable[[Scope, Receive, Send], Any]


@contextlib.asynccontextmanager
async def serve(
    app: App, on_request: Callable[[web.Request], None] | None = None, **options: Any
) -> AsyncIterator[str]:
    """A bare aiohttp server whose every request goes through ``call_asgi(app)``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if on_request is not None:
            on_request(request)
        return await call_asgi(app, request, **options)

    web_app = web.Application()
    web_app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        with anyio.fail_after(30):
            await runner.cleanup()


async def read_body(receive: Receive) -> tuple[bytes, list[bool]]:
    body, flags = b"", []
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        body += message["body"]
        flags.append(message["more_body"])
        if not message["more_body"]:
            return body, flags


async def reply(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def test_the_scope_describes_the_request() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope)
        await reply(send, 200, b"ok")

    async with serve(app, root_path="/api", extra_scope={"x.tag": 1}) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(
                url + "/api/mcp/sse?session_id=ab%20c&x=1", headers={"X-Thing": "Yes"}
            ) as resp:
                assert resp.status == 200 and await resp.read() == b"ok"
    assert seen["type"] == "http" and seen["asgi"]["version"] == "3.0"
    assert seen["method"] == "GET" and seen["scheme"] == "http" and seen["http_version"] == "1.1"
    assert seen["path"] == "/api/mcp/sse" and seen["root_path"] == "/api"
    assert seen["raw_path"] == b"/api/mcp/sse"
    assert seen["query_string"] == b"session_id=ab%20c&x=1"
    assert (b"x-thing", b"Yes") in seen["headers"]
    assert seen["client"][0] == "127.0.0.1" and seen["server"][0] == "127.0.0.1"
    assert seen["x.tag"] == 1


async def test_the_body_is_streamed_in_chunks() -> None:
    got: list[tuple[bytes, list[bool]]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        got.append(await read_body(receive))
        await reply(send, 200, b"")

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            yield bytes([65 + i]) * 70_000

    async with serve(app) as url:
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/", data=chunks()) as resp:
                assert resp.status == 200
    body, flags = got[0]
    assert body == b"".join(bytes([65 + i]) * 70_000 for i in range(5))
    assert flags[-1] is False and all(flags[:-1]) and len(flags) > 2


async def test_a_body_over_the_cap_gets_413() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await reply(send, 200, b"never")

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    async with serve(app, max_body=5000) as url:
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/", data=chunks()) as resp:
                assert resp.status == 413


async def test_single_message_bodies_get_a_content_length_and_streams_are_chunked() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/one":
            await reply(send, 201, b"hello", [(b"content-type", b"text/plain"), (b"connection", b"close")])
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for part in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async with serve(app) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/one") as resp:
                assert resp.status == 201 and resp.headers["Content-Length"] == "5"
                assert await resp.read() == b"hello"
            async with session.get(url + "/stream") as resp:
                assert resp.headers.get("Transfer-Encoding") == "chunked"
                assert await resp.read() == b"abc"


def count_writes(writes: list[bytes]) -> Callable[[web.Request], None]:
    """Note every socket write of a request's connection (the bytes of each)."""

    def spy(request: web.Request) -> None:
        transport = request.transport
        assert transport is not None
        write, writelines = transport.write, transport.writelines

        def one(data: Any) -> None:
            writes.append(bytes(data))
            write(data)

        def many(parts: Any) -> None:
            parts = [bytes(part) for part in parts]
            writes.append(b"".join(parts))
            writelines(parts)

        transport.write, transport.writelines = one, many  # type: ignore[method-assign]

    return spy


async def test_headers_leave_with_the_first_body_bytes_in_one_write() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/one":
            await reply(send, 200, b'{"ok":true}', [(b"content-type", b"application/json")])
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"data: 1\n\n", b"data: 2\n\n"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    writes: list[bytes] = []
    async with serve(app, on_request=count_writes(writes)) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/one") as resp:
                assert await resp.read() == b'{"ok":true}'
            assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200") and b'{"ok":true}' in writes[0]
            writes.clear()
            async with session.get(url + "/stream") as resp:
                assert await resp.read() == b"data: 1\n\ndata: 2\n\n"
            assert writes[0].startswith(b"HTTP/1.1 200") and b"data: 1" in writes[0]


async def test_a_stream_whose_first_body_message_is_empty_sends_its_headers_at_once() -> None:
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"late", "more_body": False})

    async with serve(app) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/") as resp:  # returns once the status line and headers came
                assert resp.status == 200
                release.set()
                assert await resp.read() == b"late"


@pytest.mark.parametrize("failure", ["raises", "silent"])
async def test_an_app_that_fails_before_answering_gives_500(failure: str) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if failure == "raises":
            raise RuntimeError("boom")

    async with serve(app) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/") as resp:
                assert resp.status == 500
                assert b"boom" not in await resp.read()


async def test_an_app_that_stops_mid_stream_ends_the_response_cleanly() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})

    async with serve(app) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/") as resp:
                assert await resp.read() == b"partial"


async def test_the_start_hook_sees_the_status_and_adds_headers() -> None:
    seen: list[int] = []

    def hook(status: int, headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
        seen.append(status)
        assert (b"mcp-session-id", b"abc") in headers
        return [("Access-Control-Allow-Origin", "https://app.example")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await reply(send, 200, b"{}", [(b"Mcp-Session-Id", b"abc")])

    async with serve(app, on_response_start=hook) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/") as resp:
                assert resp.headers["Access-Control-Allow-Origin"] == "https://app.example"
                assert resp.headers["Mcp-Session-Id"] == "abc"
    assert seen == [200]


async def test_a_vanished_client_is_detected_and_later_sends_are_no_ops() -> None:
    """aiohttp does not cancel the handler: the bridge notices by polling the transport."""
    events: list[str] = []
    done = asyncio.Event()
    exchanges: list[AsgiExchange] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: hello\n\n", "more_body": True})
        assert (await receive())["type"] == "http.request"
        message = await receive()  # blocks until the client goes away
        events.append(message["type"])
        await send({"type": "http.response.body", "body": b"data: too late\n\n", "more_body": True})
        events.append("sent-after-disconnect")
        done.set()

    async def handler(request: web.Request) -> web.StreamResponse:
        exchange = AsgiExchange(request, poll_interval=0.02)
        exchanges.append(exchange)
        return await exchange.run(app)

    web_app = web.Application()
    web_app.router.add_get("/", handler)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        await writer.drain()
        head = await reader.readuntil(b"hello")
        assert b"200 OK" in head
        writer.close()  # the client vanishes without a word
        with anyio.fail_after(10):
            await done.wait()
        assert events == ["http.disconnect", "sent-after-disconnect"]
        assert exchanges[0].disconnected
    finally:
        with anyio.fail_after(30):
            await runner.cleanup()


async def test_a_client_that_stops_reading_stalls_the_writer_until_it_reads_again() -> None:
    """Writes go through aiohttp's flow control: memory stays bounded by the socket buffers."""
    chunk = b"x" * 65536
    total_chunks = 2000  # 131 MB: far more than any socket buffer
    written = [0]
    finished = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(total_chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            written[0] += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        finished.set()

    async with serve(app) as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**16)
        writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        # Not reading: the producer must come to a halt well before the end.
        last = -1
        with anyio.fail_after(20):
            while written[0] != last:
                last = written[0]
                await anyio.sleep(0.3)
        assert written[0] < total_chunks // 2 and not finished.is_set()
        # Reading again lets it finish.
        with anyio.fail_after(60):
            while not finished.is_set():
                await reader.read(1 << 20)
        writer.close()


async def test_receive_reports_disconnect_once_the_app_has_answered() -> None:
    """After the response is complete, a leftover listener must not block forever (uvicorn semantics)."""
    messages: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body(receive)
        await reply(send, 200, b"ok")

        async def late_listener() -> None:
            messages.append(await receive())

        asyncio.get_running_loop().create_task(late_listener())

    async with serve(app) as url:
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/") as resp:
                assert await resp.read() == b"ok"
        await wait_for(lambda: bool(messages))
    assert messages[0]["type"] == "http.disconnect"


async def test_an_app_tripping_over_a_vanished_client_logs_one_line_not_a_traceback(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp_bridge.http import asgi
    from mcp_bridge.http.security import RateLimitedLog

    monkeypatch.setattr(asgi, "_GONE_LOG", RateLimitedLog())
    failed = 0
    all_failed = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal failed
        start = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
        await send(start)
        await send({"type": "http.response.body", "body": b"hello", "more_body": True})
        assert (await receive())["type"] == "http.request"
        await receive()  # the client left
        failed += 1
        if failed == 5:
            all_failed.set()
        raise RuntimeError("stream closed")  # as SDK code does when its peer is gone

    caplog.set_level(logging.DEBUG, logger="comfyui_mcp_bridge")
    async with serve(app, poll_interval=0.02) as url:
        port = int(url.rsplit(":", 1)[1])
        for _ in range(5):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            await writer.drain()
            await reader.readuntil(b"hello")
            writer.close()
        with anyio.fail_after(10):
            await all_failed.wait()
        await wait_for(lambda: sum("client left" in r.getMessage() for r in caplog.records) == 5)
    gone = [r for r in caplog.records if "client left" in r.getMessage()]
    assert [r.levelno for r in gone] == [logging.INFO] + [logging.DEBUG] * 4
    assert not any(r.exc_info for r in caplog.records)
