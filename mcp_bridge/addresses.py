"""Addresses ComfyUI listens on and peers connect from: parsing and loopback rules, no DNS.

A base module: every layer may import it (the gate, the panel, the output-folder policy).
"""

from __future__ import annotations

import ipaddress

WILDCARD_LISTEN = frozenset({"0.0.0.0", "::", "[::]", ""})  # noqa: S104 - recognised, never bound


def listen_addresses(listen: str) -> list[str]:
    """The addresses in ComfyUI's ``--listen`` value (comma-separated, possibly bracketed IPv6)."""
    out = []
    for part in listen.split(","):
        part = part.strip()
        if part.startswith("[") and part.endswith("]"):
            part = part[1:-1]
        out.append(part)
    return out or ["127.0.0.1"]


def is_loopback_address(address: str) -> bool:
    """True for ``localhost`` and loopback IP literals; other names count as not loopback (no DNS)."""
    name = normalize_hostname(address)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback_ip(text: str | None) -> bool:
    """True for a loopback peer address (``127.x``, ``::1``, IPv4-mapped loopback, a zone id ignored)."""
    if not text:
        return False
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def listens_beyond_loopback(listen: str) -> bool:
    """True when any ``--listen`` address is a wildcard, a non-loopback IP or a host name."""
    return any(a in WILDCARD_LISTEN or not is_loopback_address(a) for a in listen_addresses(listen))


def normalize_hostname(name: str) -> str:
    """A host name or IP literal in one canonical form: lower case, no brackets or final dot."""
    name = name.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    name = name.rstrip(".")
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        return name
