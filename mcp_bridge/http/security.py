"""The gate in front of every MCP route: Host, Origin, bearer token, content type, body size, CORS.

ComfyUI has no authentication and its own middleware does not stop DNS rebinding, so the bridge checks
every MCP request itself, before the SDK sees it (security.md §4.1):

1. **Host** must name this machine: ``localhost``, a loopback address, an address ComfyUI was told to
   ``--listen`` on, this machine's host name when it listens on all interfaces, an IP literal equal to
   the address the connection arrived on, or a name from ``extra_allowed_hosts``. Otherwise **421**.
   A DNS-rebinding page always sends its own domain name, which none of these match.
2. **Origin**, when present, must be ``http(s)://`` one of those hosts (any port), or listed in
   ``extra_allowed_origins`` (or be the origin given to ``--enable-cors-header``). ``Origin: null``
   is always refused. A request marked ``Sec-Fetch-Site: cross-site`` is refused unless its Origin
   was configured explicitly. Otherwise **403**. Requests without Origin (CLI clients) pass.
3. **Bearer token** (``Authorization: Bearer …``, never from the query string), compared in constant
   time. Required when ComfyUI listens beyond loopback or runs with ``--enable-cors-header``; on a
   loopback-only ComfyUI only if ``require_token_on_loopback`` is set. Otherwise **401** with
   ``WWW-Authenticate: Bearer``. A presented token that is wrong is always a **401**
   (``error="invalid_token"``), also where the token is optional.

   Why not required on loopback by default: there, only processes on this machine can connect, and
   they can already drive ComfyUI through its own unauthenticated ``/prompt`` API, so a token would
   add configuration friction without protecting anything new. Browsers — the remaining local
   threat — are stopped by checks 1–2 and by 4, which forces a CORS preflight that ComfyUI does not
   grant. Turn the setting on for multi-user machines.
4. **POST bodies** must be ``application/json`` (**400**) and at most ``max_body_bytes`` (**413**).

The token is generated with :mod:`secrets` on first start and kept in ComfyUI's user folder with
mode 0600 (outside the per-user folders ComfyUI serves through ``/userdata``). It is never logged.

CORS: ComfyUI's own CORS middleware adds its headers after a handler returns, which is too late for
streamed responses. When (and only when) ComfyUI runs with ``--enable-cors-header``, the bridge
adds ``Access-Control-*`` headers itself at response start for allowed origins, and answers
preflights for the MCP routes (see :meth:`Policy.preflight`).
"""

from __future__ import annotations

import errno
import hmac
import ipaddress
import logging
import os
import secrets
import socket
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecuritySettings

from ..addresses import (
    WILDCARD_LISTEN,
    is_loopback_address,
    listen_addresses,
    listens_beyond_loopback,
    normalize_hostname,
)

log = logging.getLogger("comfyui_mcp_bridge")


TOKEN_FILE = "comfyui-mcp-bridge.token"  # noqa: S105 - a file name, not a secret
_TOKEN_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_MIN_TOKEN_LENGTH = 32
_DEFAULT_PORTS = {"http": 80, "https": 443}

#: Request headers a browser client may send to the MCP routes (answered in CORS preflights).
CORS_ALLOWED_HEADERS = frozenset(
    {
        "authorization",
        "content-type",
        "accept",
        "last-event-id",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
    }
)
CORS_EXPOSED_HEADERS = "Mcp-Session-Id, MCP-Protocol-Version, WWW-Authenticate"
CORS_ALLOWED_METHODS = ("GET", "POST", "DELETE")


class TokenError(RuntimeError):
    """The token file exists but cannot be used (wrong type, unreadable, malformed)."""


@dataclass(frozen=True)
class Rejection:
    """Why the gate refused a request, as an HTTP status, a short reason and a client-facing message."""

    status: int
    reason: str  # short machine-readable tag, e.g. "host", "origin", "token"
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)


# -- addresses ---------------------------------------------------------------------------------


def split_host(value: str) -> tuple[str, int | None] | None:
    """Parse a Host header (``name``, ``name:port``, ``[v6]:port``) into (normalized name, port)."""
    value = value.strip()
    if not value or any(c in value for c in "/?#@\\ \t"):
        return None
    try:
        parts = urlsplit("//" + value)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not hostname:
        return None
    return normalize_hostname(hostname), port


def _host_for_url(name: str) -> str:
    return f"[{name}]" if ":" in name else name


def parse_origin(origin: str) -> tuple[str, str, int | None] | None:
    """(scheme, hostname, port) of an http(s) Origin value (port None when it is the scheme's default),
    or None when it is not one: no user, path, query or fragment."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    explicit_port: int | None = None if port == _DEFAULT_PORTS[scheme] else port
    return scheme, normalize_hostname(parts.hostname), explicit_port


def same_origin(origin: str, host: str) -> bool:
    """True when the ``Origin`` header names the same host and port as the ``Host`` header."""
    parsed, request = parse_origin(origin), split_host(host)
    if parsed is None or request is None:
        return False
    scheme, name, port = parsed
    request_port = None if request[1] == _DEFAULT_PORTS[scheme] else request[1]
    return name == request[0] and port == request_port


# -- token -------------------------------------------------------------------------------------


def token_path(user_directory: str | os.PathLike[str]) -> Path:
    """Where the bearer token is kept inside ComfyUI's user folder."""
    return Path(user_directory) / TOKEN_FILE


def load_or_create_token(user_directory: str | os.PathLike[str]) -> str:
    """Return the bridge's bearer token, generating and storing it (mode 0600) on first use.

    The file is created exclusively and never followed through a symlink. A file with looser
    permissions is tightened. Raises :class:`TokenError` when the file exists but is unusable.
    """
    path = token_path(user_directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = _read_token(path)
    if existing is not None:
        return existing
    token = secrets.token_urlsafe(32)
    try:
        _write_token(path, token, replace=False)
    except FileExistsError:  # another process created it meanwhile
        other = _read_token(path)
        if other is None:
            raise TokenError(f"{path} appeared but holds no token") from None
        return other
    log.info("comfyui-mcp-bridge: generated a new MCP bearer token in %s", path)
    return token


def regenerate_token(user_directory: str | os.PathLike[str]) -> str:
    """Generate a new token and atomically replace the token file with it (mode 0600); return it."""
    path = token_path(user_directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    _write_token(path, token, replace=True)
    log.info("comfyui-mcp-bridge: generated a new MCP bearer token in %s", path)
    return token


def _write_token(path: Path, token: str, *, replace: bool) -> None:
    # A complete 0600 temp file, then linked in (fails if the file exists) or renamed over it (which
    # replaces a symlink itself, never writes through it).
    tmp = path.with_name(f".{TOKEN_FILE}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(token + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_token(path: Path) -> str | None:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise TokenError(f"{path} is a symlink; refusing to use it") from None
        raise TokenError(f"cannot read {path}: {exc.strerror}") from None
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise TokenError(f"{path} is not a regular file")
        text = fh.read(4096).strip()
        if os.name == "posix" and info.st_mode & 0o077:
            os.fchmod(fh.fileno(), 0o600)
            log.warning("comfyui-mcp-bridge: %s was readable by others; permissions set to 0600", path)
    if not text:
        path.unlink(missing_ok=True)  # an empty file left by a crash: make a new token
        return None
    if len(text) < _MIN_TOKEN_LENGTH or not set(text) <= _TOKEN_ALPHABET:
        raise TokenError(
            f"{path} does not hold a usable token (need at least {_MIN_TOKEN_LENGTH} characters of "
            "A-Z a-z 0-9 - _ . ~); delete the file to generate a new one"
        )
    return text


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None. Never reads the query."""
    value = headers.get("Authorization")
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = rest.strip()
    return token or None


# -- the policy --------------------------------------------------------------------------------


@dataclass
class Policy:
    """The gate's rules, derived once from ComfyUI's options and the settings (see the module doc)."""

    hostnames: frozenset[str]
    host_ports: frozenset[tuple[str, int]]
    explicit_origins: frozenset[tuple[str, str, int | None]]
    explicit_origin_any_port: frozenset[tuple[str, str]]
    token: str | None
    token_required: bool
    cors_enabled: bool
    max_body_bytes: int
    exposure: str  # a sentence for logs and the panel
    _sdk: TransportSecuritySettings | None = field(default=None, repr=False)

    # -- checks --

    def host_allowed(self, host_header: str | None, local_ip: str | None) -> bool:
        """Rule 1: the Host header names this machine."""
        if not host_header:
            return False
        parsed = split_host(host_header)
        if parsed is None:
            return False
        name, port = parsed
        if name in self.hostnames or is_loopback_address(name):
            return True
        if port is not None and (name, port) in self.host_ports:
            return True
        if local_ip is not None and _is_ip(name) and name == normalize_hostname(local_ip):
            self._learn_local_address(name)
            return True
        return False

    def origin_verdict(self, origin: str, local_ip: str | None) -> str:
        """Rule 2 for a present Origin: ``"explicit"``, ``"derived"`` or ``"refused"``."""
        if origin.strip().lower() == "null":
            return "refused"
        parsed = parse_origin(origin)
        if parsed is None:
            return "refused"
        scheme, name, port = parsed
        if (scheme, name, port) in self.explicit_origins or (scheme, name) in self.explicit_origin_any_port:
            return "explicit"
        if name in self.hostnames or is_loopback_address(name):
            return "derived"
        if port is not None and (name, port) in self.host_ports:
            return "derived"
        if local_ip is not None and _is_ip(name) and name == normalize_hostname(local_ip):
            return "derived"
        return "refused"

    def check(
        self,
        method: str,
        headers: Mapping[str, str],
        local_ip: str | None,
        *,
        needs_token: bool = True,
    ) -> Rejection | None:
        """Apply rules 1–4 to a request; None when it may proceed."""
        if not self.host_allowed(headers.get("Host"), local_ip):
            return Rejection(
                421,
                "host",
                "Invalid Host header: this name is not allowed for the MCP "
                "endpoint (add it to the extra_allowed_hosts setting if it is yours)",
            )
        origin = headers.get("Origin")
        verdict = self.origin_verdict(origin, local_ip) if origin is not None else None
        if verdict == "refused":
            return Rejection(
                403,
                "origin",
                "Origin not allowed for the MCP endpoint (see the extra_allowed_origins setting)",
            )
        if headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site" and verdict != "explicit":
            return Rejection(403, "cross-site", "Cross-site requests are not allowed for the MCP endpoint")
        if needs_token:
            provided = bearer_token(headers)
            if provided is not None and not self.token_matches(provided):
                # Wrong is wrong, also where the token is optional: a client must not believe it is
                # authenticated with a stale or mistyped token.
                challenge = 'Bearer realm="comfyui-mcp-bridge", error="invalid_token"'
                return Rejection(401, "token-wrong", "Invalid bearer token", {"WWW-Authenticate": challenge})
            if provided is None and self.token_required:
                return Rejection(
                    401,
                    "token-missing",
                    "This MCP endpoint requires a bearer token (Authorization: Bearer <token>)",
                    {"WWW-Authenticate": 'Bearer realm="comfyui-mcp-bridge"'},
                )
        if method == "POST":
            ctype = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if ctype != "application/json":
                return Rejection(
                    400, "content-type", "MCP messages must be sent as Content-Type: application/json"
                )
            length = headers.get("Content-Length")
            if length is not None and length.strip().isdigit() and int(length) > self.max_body_bytes:
                return Rejection(413, "body-size", f"Request body larger than {self.max_body_bytes} bytes")
        return None

    def token_matches(self, provided: str) -> bool:
        """Constant-time comparison with the stored token."""
        if self.token is None:
            return False
        return hmac.compare_digest(provided.encode("utf-8", "surrogateescape"), self.token.encode("ascii"))

    # -- CORS --

    def cors_headers(self, headers: Mapping[str, str], local_ip: str | None) -> dict[str, str]:
        """Headers to add at response start for a browser request (empty unless CORS is enabled)."""
        origin = headers.get("Origin")
        if not self.cors_enabled or origin is None or self.origin_verdict(origin, local_ip) == "refused":
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": CORS_EXPOSED_HEADERS,
            "Vary": "Origin",
        }

    def preflight(self, headers: Mapping[str, str], local_ip: str | None) -> tuple[int, dict[str, str]]:
        """Answer an ``OPTIONS`` preflight for an MCP route: (status, headers)."""
        refused = self.check("OPTIONS", headers, local_ip, needs_token=False)
        origin = headers.get("Origin")
        if refused is not None or origin is None or not self.cors_enabled:
            return 403, {}
        method = headers.get("Access-Control-Request-Method", "").strip().upper()
        if method and method not in CORS_ALLOWED_METHODS:
            return 403, {}
        requested = [h.strip().lower() for h in headers.get("Access-Control-Request-Headers", "").split(",")]
        requested = [h for h in requested if h]
        if any(h not in CORS_ALLOWED_HEADERS and not h.startswith("mcp-param-") for h in requested):
            return 403, {}
        out = {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ", ".join(CORS_ALLOWED_METHODS),
            "Access-Control-Allow-Headers": ", ".join(requested) if requested else "Content-Type",
            "Access-Control-Max-Age": "600",
            "Vary": "Origin",
        }
        if headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
            out["Access-Control-Allow-Private-Network"] = "true"
        return 204, out

    # -- the SDK's own check, configured to agree --

    def sdk_settings(self) -> TransportSecuritySettings:
        """Transport security settings for the SDK transports, mirroring rules 1–2 (defence in depth).

        The same object is handed to every transport; addresses learned through the connection's
        local address (rule 1) are appended to it as they are seen.
        """
        if self._sdk is None:
            hosts: list[str] = []
            origins: list[str] = []
            for name in sorted(self.hostnames | {"127.0.0.1", "::1", "localhost"}):
                self._add_sdk_name(hosts, origins, name)
            for name, host_port in sorted(self.host_ports):
                hosts.append(f"{_host_for_url(name)}:{host_port}")
                origins.extend(f"{s}://{_host_for_url(name)}:{host_port}" for s in _DEFAULT_PORTS)
            for scheme, name, origin_port in sorted(self.explicit_origins, key=str):
                suffix = f":{origin_port}" if origin_port else ""
                origins.append(f"{scheme}://{_host_for_url(name)}{suffix}")
            for scheme, name in sorted(self.explicit_origin_any_port):
                origins.extend([f"{scheme}://{_host_for_url(name)}", f"{scheme}://{_host_for_url(name)}:*"])
            self._sdk = TransportSecuritySettings(
                enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
            )
        return self._sdk

    @staticmethod
    def _add_sdk_name(hosts: list[str], origins: list[str], name: str) -> None:
        url_name = _host_for_url(name)
        hosts.extend([url_name, f"{url_name}:*"])
        for scheme in _DEFAULT_PORTS:
            origins.extend([f"{scheme}://{url_name}", f"{scheme}://{url_name}:*"])

    def _learn_local_address(self, name: str) -> None:
        sdk = self.sdk_settings()
        if _host_for_url(name) not in sdk.allowed_hosts:
            self._add_sdk_name(sdk.allowed_hosts, sdk.allowed_origins, name)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def build_policy(
    *,
    listen: str,
    port: int,
    tls: bool,
    cors_origin: str | None,
    token: str | None,
    require_token_on_loopback: bool,
    extra_allowed_hosts: Iterable[str] = (),
    extra_allowed_origins: Iterable[str] = (),
    max_body_bytes: int = 4 * 1024 * 1024,
) -> Policy:
    """Derive the gate's rules from how ComfyUI was started and from the settings.

    Raises ValueError naming a malformed ``extra_allowed_hosts``/``extra_allowed_origins`` entry.
    """
    names, host_ports = _host_names(listen, extra_allowed_hosts)
    origins = list(extra_allowed_origins)
    if cors_origin and cors_origin.strip() != "*":
        origins.append(cors_origin.strip())
    explicit, any_port = _origins(origins)
    reasons = []
    if listens_beyond_loopback(listen):
        reasons.append(f"ComfyUI listens beyond loopback ({listen})")
    if cors_origin is not None:
        reasons.append(f"ComfyUI sends CORS headers (--enable-cors-header {cors_origin})")
    if require_token_on_loopback:
        reasons.append("require_token_on_loopback is set")
    required = bool(reasons)
    scheme = "https" if tls else "http"
    exposure = (
        f"MCP at {scheme}://<host>:{port}/mcp; bearer token required: " + "; ".join(reasons)
        if required
        else f"MCP at {scheme}://127.0.0.1:{port}/mcp (loopback only; bearer token optional)"
    )
    return Policy(
        hostnames=frozenset(names),
        host_ports=frozenset(host_ports),
        explicit_origins=frozenset(explicit),
        explicit_origin_any_port=frozenset(any_port),
        token=token,
        token_required=required,
        cors_enabled=cors_origin is not None,
        max_body_bytes=max_body_bytes,
        exposure=exposure,
    )


def _host_names(listen: str, extra: Iterable[str]) -> tuple[set[str], set[tuple[str, int]]]:
    """The names a Host header may carry (any port), and the extra ``host:port`` pairs."""
    names = {"localhost", "127.0.0.1", "::1"}
    addresses = listen_addresses(listen)
    for address in addresses:
        if address not in WILDCARD_LISTEN:
            names.add(normalize_hostname(address))
    if any(a in WILDCARD_LISTEN for a in addresses):
        hostname = normalize_hostname(socket.gethostname())
        if hostname:
            names.update({hostname, hostname.split(".", 1)[0] + ".local"})
    host_ports: set[tuple[str, int]] = set()
    for entry in extra:
        parsed = split_host(entry)
        if parsed is None:
            raise ValueError(f"extra_allowed_hosts: {entry!r} is not a host name or host:port")
        name, entry_port = parsed
        if entry_port is None:
            names.add(name)
        else:
            host_ports.add((name, entry_port))
    return names, host_ports


def _origins(entries: Iterable[str]) -> tuple[set[tuple[str, str, int | None]], set[tuple[str, str]]]:
    """The allowed Origins: exact ``scheme://host[:port]`` ones, and ``scheme://host:*`` ones."""
    explicit: set[tuple[str, str, int | None]] = set()
    any_port: set[tuple[str, str]] = set()
    for entry in entries:
        text = entry.strip()
        if text.endswith(":*"):
            parsed_origin = parse_origin(text[:-2])
            if parsed_origin is None or parsed_origin[2] is not None:
                raise ValueError(f"extra_allowed_origins: {entry!r} is not an origin like http://host:*")
            any_port.add(parsed_origin[:2])
            continue
        parsed_origin = parse_origin(text)
        if parsed_origin is None or text.lower() == "null":
            raise ValueError(f"extra_allowed_origins: {entry!r} is not an origin like https://host[:port]")
        explicit.add(parsed_origin)
    return explicit, any_port


class RateLimitedLog:
    """Log one line per key per interval; the rest go to DEBUG (rejections, disconnects can be numerous)."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self._interval = interval_s
        self._last: dict[str, float] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        """Log ``msg`` at WARNING unless ``key`` was logged within the interval."""
        self.log(logging.WARNING, key, msg, *args)

    def log(self, level: int, key: str, msg: str, *args: object) -> None:
        """Log ``msg`` at ``level`` unless ``key`` was logged within the interval (then at DEBUG)."""
        now = time.monotonic()
        if now - self._last.get(key, -self._interval) >= self._interval:
            self._last[key] = now
            log.log(level, msg, *args)
        else:
            log.debug(msg, *args)
