"""Input images from https:// URLs (delivery/fetch.py), against a real HTTPS server on loopback.

How each rule is tested: the server is real (aiohttp, TLS with a certificate for ``localhost`` from a
CA made here), so scheme, host list, redirects, the byte cap, the time cap and TLS name checking run
for real. Loopback is never fetchable under the shipped rule, so the success cases inject a rule that
allows loopback (``FetchRules.address_allowed``, a test-only field no setting reaches) and the test
CA; the shipped rule itself is tested on the loopback server (refused before any request) and as a
unit on address literals, and on names a test resolver maps to private addresses (no DNS here).
"""

from __future__ import annotations

import asyncio
import datetime
import io
import ipaddress
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp import Client
from PIL import Image

from mcp_bridge.bridge import build_mcp
from mcp_bridge.config import Settings
from mcp_bridge.delivery.fetch import FetchRefused, FetchRules, public_address, stage_url
from mcp_bridge.delivery.inputs import InputRejected
from tests.unit.fake_comfy import FakeComfy, fake_services

pytestmark = pytest.mark.anyio
CAP = 200_000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def png(size: tuple[int, int] = (48, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``localhost`` signed by it: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


class Server:
    """The HTTPS test server: its port, the paths it was asked for, a client TLS context trusting it."""

    def __init__(self, port: int, hits: list[str], client_ssl: ssl.SSLContext) -> None:
        self.port, self.hits, self.client_ssl = port, hits, client_ssl

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def rules(self, **changes: Any) -> FetchRules:
        """Loopback allowed (test only), the test CA trusted, localhost listed."""
        base: dict[str, Any] = {
            "hosts": frozenset({"localhost"}),
            "max_bytes": CAP,
            "timeout_s": 2.0,
            "address_allowed": lambda address: address.is_loopback,
            "ssl_context": self.client_ssl,
        }
        return FetchRules(**{**base, **changes})


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    ca, cert, key = _certificates(tmp_path)
    hits: list[str] = []
    image = png()

    async def handle(request: web.Request) -> web.StreamResponse:
        hits.append(request.path)
        path = request.path
        if path == "/red.png":
            return web.Response(body=image, content_type="image/png")
        if path == "/same":
            raise web.HTTPFound("/red.png")
        if path == "/other":
            raise web.HTTPFound(f"https://127.0.0.1:{request.url.port}/red.png")
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/big":
            return web.Response(body=b"\x89PNG" + bytes(CAP), content_type="image/png")
        if path == "/big-stream":  # no Content-Length: the cap holds while reading
            answer = web.StreamResponse()
            await answer.prepare(request)
            for _ in range(CAP // 8192 + 2):
                await answer.write(bytes(8192))
            return answer
        if path == "/slow":
            await asyncio.sleep(5)
            return web.Response(body=image, content_type="image/png")
        if path == "/text":
            return web.Response(text="not an image " * 100)
        return web.Response(status=404)

    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ssl)
    await site.start()
    port = runner.addresses[0][1]
    client_ssl = ssl.create_default_context(cafile=str(ca))
    try:
        yield Server(port, hits, client_ssl)
    finally:
        await runner.cleanup()


def staged_files(root: Path) -> list[Path]:
    folder = root / "input" / "mcp"
    return sorted(folder.iterdir()) if folder.is_dir() else []


async def stage(server: Server, tmp_path: Path, path: str, rules: FetchRules | None = None) -> Path:
    rules = rules or server.rules()
    staged = await stage_url(server.url(path), rules, input_dir=tmp_path / "input", max_pixels=4096 * 4096)
    return staged.path


async def refused(server: Server, tmp_path: Path, url: str, rules: FetchRules) -> str:
    with pytest.raises((FetchRefused, InputRejected)) as caught:
        await stage_url(url, rules, input_dir=tmp_path / "input", max_pixels=4096 * 4096)
    assert staged_files(tmp_path) == []  # nothing staged on refusal
    return str(caught.value)


async def test_an_image_from_a_listed_host_is_staged_as_any_input(server: Server, tmp_path: Path) -> None:
    path = await stage(server, tmp_path, "/red.png")
    assert path.read_bytes() == png()
    assert staged_files(tmp_path) == [path]
    assert server.hits == ["/red.png"]


async def test_a_redirect_on_the_same_host_is_followed(server: Server, tmp_path: Path) -> None:
    path = await stage(server, tmp_path, "/same")
    assert path.read_bytes() == png()
    assert server.hits == ["/same", "/red.png"]


async def test_refused_when_the_host_is_not_listed_or_nothing_is(server: Server, tmp_path: Path) -> None:
    message = await refused(server, tmp_path, server.url("/red.png"), server.rules(hosts=frozenset({"a.b"})))
    assert "'localhost' is not in the fetch_url_hosts setting" in message
    message = await refused(server, tmp_path, server.url("/red.png"), server.rules(hosts=frozenset()))
    assert "fetch_url_hosts" in message and "(none are)" in message
    assert server.hits == []


async def test_refused_for_plain_http_and_credentials(server: Server, tmp_path: Path) -> None:
    url = f"http://localhost:{server.port}/red.png"
    assert "only https:// URLs" in await refused(server, tmp_path, url, server.rules())
    url = f"https://user:pw@localhost:{server.port}/red.png"
    assert "credentials" in await refused(server, tmp_path, url, server.rules())
    assert server.hits == []


async def test_refused_when_it_redirects_to_another_host(server: Server, tmp_path: Path) -> None:
    rules = server.rules(hosts=frozenset({"localhost", "127.0.0.1"}))  # even a listed other host
    message = await refused(server, tmp_path, server.url("/other"), rules)
    assert "redirects to" in message and "another host" in message
    assert server.hits == ["/other"]  # the target was never asked


async def test_redirect_loops_end(server: Server, tmp_path: Path) -> None:
    assert "more than 3 redirects" in await refused(server, tmp_path, server.url("/loop"), server.rules())
    assert server.hits == ["/loop"] * 4


async def test_loopback_is_refused_by_the_shipped_rule_before_any_request(
    server: Server, tmp_path: Path
) -> None:
    rules = server.rules(address_allowed=public_address)
    message = await refused(server, tmp_path, server.url("/red.png"), rules)
    assert "'localhost' resolves to 127.0.0.1" in message or "'localhost' resolves to ::1" in message
    assert "never fetched" in message
    assert server.hits == []


async def test_a_name_resolving_to_a_private_address_is_refused(server: Server, tmp_path: Path) -> None:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return {"inside.example": ["10.1.2.3"], "mixed.example": ["93.184.216.34", "192.168.1.9"]}[host]

    hosts = frozenset({"inside.example", "mixed.example", "169.254.169.254"})
    rules = server.rules(hosts=hosts, address_allowed=public_address, resolve=resolve)
    for url, address in (
        ("https://inside.example/a.png", "10.1.2.3"),
        ("https://mixed.example/a.png", "192.168.1.9"),  # one bad answer among good ones is enough
        ("https://169.254.169.254/latest/meta-data", "169.254.169.254"),  # a literal: no lookup
    ):
        assert f"resolves to {address}" in await refused(server, tmp_path, url, rules)
    assert asked == ["inside.example", "mixed.example"]


def test_only_public_unicast_addresses_pass_the_shipped_rule() -> None:
    refused = [
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.0.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
        "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fc00::1", "ff02::1",
        "::ffff:127.0.0.1", "::ffff:10.0.0.1", "2002:7f00:1::", "64:ff9b::10.0.0.1",
    ]  # fmt: skip
    assert [a for a in refused if public_address(ipaddress.ip_address(a))] == []
    allowed = ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::8.8.8.8"]
    assert [a for a in allowed if not public_address(ipaddress.ip_address(a))] == []


async def test_refused_over_the_byte_cap(server: Server, tmp_path: Path) -> None:
    message = await refused(server, tmp_path, server.url("/big"), server.rules())
    assert f"larger than {CAP} bytes" in message
    message = await refused(server, tmp_path, server.url("/big-stream"), server.rules())
    assert f"larger than {CAP} bytes" in message


async def test_refused_when_too_slow(server: Server, tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    message = await refused(server, tmp_path, server.url("/slow"), server.rules(timeout_s=0.5))
    assert "took longer than 0.5 s" in message
    assert loop.time() - started < 4  # the server would answer after 5 s


async def test_the_answer_gets_the_image_checks_of_every_input(server: Server, tmp_path: Path) -> None:
    message = await refused(server, tmp_path, server.url("/text"), server.rules())
    assert "not a PNG, JPEG or WebP image" in message
    message = await refused(server, tmp_path, server.url("/missing.png"), server.rules())
    assert "answered HTTP 404" in message


async def test_tls_is_checked_for_the_name_even_on_a_pinned_address(server: Server, tmp_path: Path) -> None:
    message = await refused(server, tmp_path, server.url("/red.png"), server.rules(ssl_context=None))
    assert "cannot fetch" in message and "Certificate" in message


@pytest.mark.parametrize(
    ("hosts", "url", "said"),
    [
        ([], "https://images.example/cat.png", "fetch_url_hosts"),  # the default: off
        (["127.0.0.1"], "https://127.0.0.1:9/cat.png", "resolves to 127.0.0.1"),  # listed, not public
    ],
)
async def test_the_tools_refuse_and_queue_nothing(
    tmp_path: Path, hosts: list[str], url: str, said: str
) -> None:
    settings = Settings(fetch_url_hosts=hosts)
    async with fake_services(tmp_path, settings) as services, Client(build_mcp(services)) as client:
        result = await client.call_tool("img2img", {"input_image": url, "prompt": "a cat", "steps": 2})
        assert result.is_error
        assert said in " ".join(getattr(block, "text", "") for block in result.content)
        assert isinstance(services.comfy, FakeComfy) and services.comfy.queued == []
    assert staged_files(tmp_path) == []
