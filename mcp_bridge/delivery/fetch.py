"""Fetch an input image from an ``https://`` URL whose host the ``fetch_url_hosts`` setting lists.

Off unless that setting names hosts. For every request (the first and each redirect): the scheme must
be https, the host must be listed (exact name or IP literal, case and final dot ignored); the name is
resolved here and *every* address it resolves to must be public (no loopback, private, link-local,
shared, multicast, reserved or unspecified address, IPv4-mapped forms included); then the connection
goes to those checked addresses only (a pinned resolver: aiohttp never resolves the name again, so a
second DNS answer cannot swap in another address); TLS still verifies the certificate for the name.
Redirects are followed only within the same origin (at most :data:`MAX_REDIRECTS`); the body is capped
(``Content-Length`` first, then while reading) and the whole fetch is bounded in time. No proxy from the
environment, no cookies. The bytes returned are then checked as any input image
(:mod:`.inputs`). Async, on the event loop: network I/O only.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from ..addresses import normalize_hostname
from ..specs.sizes import SizeCheck
from .inputs import StagedImage, store_image_bytes

MAX_REDIRECTS = 3
CHUNK = 64 * 1024
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
Resolve = Callable[[str, int], Awaitable[list[str]]]  # host, port -> IP address texts


class FetchRefused(ValueError):
    """The URL was not fetched, or its answer not used; the message says why."""


def is_url(text: str) -> bool:
    """True for ``http://`` and ``https://`` text (the forms this module answers for)."""
    head = text.strip()[:8].lower()
    return head.startswith(("https://", "http://"))


def public_address(address: IPAddress) -> bool:
    """True only for a globally routable unicast address (never loopback, private, link-local, ...)."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if address in _NAT64:  # 64:ff9b::a.b.c.d reaches a.b.c.d
            mapped = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if mapped is not None:
            return public_address(mapped)
    return address.is_global and not (
        address.is_multicast or address.is_loopback or address.is_link_local or address.is_reserved
    )


async def system_resolve(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives ``host`` (off the loop, through asyncio's executor)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class FetchRules:
    """What may be fetched: listed hosts, the byte and time caps. ``address_allowed``, ``resolve`` and
    ``ssl_context`` are for tests (a loopback test server, a test CA); settings never change them."""

    hosts: frozenset[str]
    max_bytes: int
    timeout_s: float
    address_allowed: Callable[[IPAddress], bool] = public_address
    resolve: Resolve = system_resolve
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)

    @classmethod
    def of(cls, hosts: Sequence[str], max_bytes: int, timeout_s: float) -> FetchRules:
        return cls(frozenset(normalize_hostname(h) for h in hosts if h.strip()), max_bytes, timeout_s)

    def listed(self, host: str) -> bool:
        return normalize_hostname(host) in self.hosts


class _PinnedResolver(AbstractResolver):
    """Answers only for the one host already resolved and checked, with those addresses."""

    def __init__(self, host: str, addresses: list[str]) -> None:
        self._host, self._addresses = host, addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._host:
            raise OSError(f"{host!r} was not checked")
        return [
            ResolveResult(
                hostname=host,
                host=a,
                port=port,
                family=socket.AF_INET6 if ":" in a else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for a in self._addresses
        ]

    async def close(self) -> None:
        return None


async def fetch_image_bytes(url: str, rules: FetchRules) -> bytes:
    """The body of ``url`` under ``rules`` (see module doc); raise :class:`FetchRefused`."""
    shown = url.strip()[:120]
    if not rules.hosts:
        raise FetchRefused(
            f"{shown!r} is a URL; URLs are fetched only from hosts the fetch_url_hosts setting lists "
            "(none are). Give a file, a comfy://output/… URI, a path inside an allowed folder or base64"
        )
    try:
        return await asyncio.wait_for(_follow(url.strip(), rules), rules.timeout_s)
    except asyncio.TimeoutError:
        raise FetchRefused(f"{shown!r} took longer than {rules.timeout_s:g} s to fetch") from None


async def stage_url(
    url: str, rules: FetchRules, *, input_dir: Path, max_pixels: int, check: SizeCheck | None = None
) -> StagedImage:
    """Fetch ``url`` and stage its bytes as an input image (checked as every input; see :mod:`.inputs`).
    Raises :class:`FetchRefused` or :class:`~.inputs.InputRejected`; nothing is written on refusal."""
    data = await fetch_image_bytes(url, rules)
    return await asyncio.to_thread(
        store_image_bytes,
        data,
        "url",
        input_dir=input_dir,
        max_bytes=rules.max_bytes,
        max_pixels=max_pixels,
        check=check,
    )


async def _follow(url: str, rules: FetchRules) -> bytes:
    origin = _origin(url, rules)
    for _ in range(MAX_REDIRECTS + 1):
        body, location = await _get(url, rules)
        if location is None:
            return body
        target = urljoin(url, location)
        if _origin(target, rules) != origin:
            raise FetchRefused(
                f"{url[:120]!r} redirects to {target[:120]!r}, another host; redirects are followed "
                "only on the same https host and port"
            )
        url = target
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects from {url[:120]!r}")


def _origin(url: str, rules: FetchRules) -> tuple[str, str, int]:
    """Scheme, host and port of ``url`` after the scheme and host-list checks."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise FetchRefused(f"{url[:120]!r} is not a valid URL ({exc})") from None
    if parts.scheme.lower() != "https":
        raise FetchRefused(f"{url[:120]!r}: only https:// URLs are fetched")
    host = parts.hostname or ""
    if parts.username or parts.password:
        raise FetchRefused(f"{url[:120]!r}: URLs with credentials are not fetched")
    if not rules.listed(host):
        listed = ", ".join(sorted(rules.hosts))
        raise FetchRefused(f"host {host[:80]!r} is not in the fetch_url_hosts setting ({listed})")
    return "https", normalize_hostname(host), port


async def _checked_addresses(host: str, port: int, rules: FetchRules) -> list[str]:
    """``host`` resolved, every address allowed by the rules (an IP literal is its own address)."""
    try:
        found = [ipaddress.ip_address(host).compressed]
    except ValueError:
        try:
            found = await rules.resolve(host, port)
        except OSError as exc:
            raise FetchRefused(f"cannot resolve {host[:80]!r}: {exc}") from None
    if not found:
        raise FetchRefused(f"{host[:80]!r} resolves to no address")
    for text in found:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not rules.address_allowed(address):
            raise FetchRefused(
                f"{host[:80]!r} resolves to {address.compressed}, a loopback, private or otherwise "
                "non-public address; such addresses are never fetched"
            )
    return found


async def _get(url: str, rules: FetchRules) -> tuple[bytes, str | None]:
    """One GET: the body of a 200 answer, or the Location of a redirect."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    addresses = await _checked_addresses(host, parts.port or 443, rules)
    connector = aiohttp.TCPConnector(
        resolver=_PinnedResolver(host, addresses),
        ssl=rules.ssl_context if rules.ssl_context is not None else True,
        use_dns_cache=False,
    )
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
    ) as session:
        try:
            async with session.get(url, allow_redirects=False) as answer:
                if answer.status in (301, 302, 303, 307, 308):
                    location = answer.headers.get("Location")
                    if not location:
                        raise FetchRefused(f"{url[:120]!r} redirects without a Location")
                    return b"", location
                if answer.status != 200:
                    raise FetchRefused(f"{url[:120]!r} answered HTTP {answer.status}")
                return await _read_capped(answer, url, rules.max_bytes), None
        except aiohttp.ClientError as exc:
            raise FetchRefused(f"cannot fetch {url[:120]!r}: {type(exc).__name__}: {exc}"[:300]) from None


async def _read_capped(answer: aiohttp.ClientResponse, url: str, max_bytes: int) -> bytes:
    too_big = f"{url[:120]!r} is larger than {max_bytes} bytes, the input image cap (max_input_bytes)"
    if answer.content_length is not None and answer.content_length > max_bytes:
        raise FetchRefused(too_big)
    body = bytearray()
    async for chunk in answer.content.iter_chunked(CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise FetchRefused(too_big)
    return bytes(body)
