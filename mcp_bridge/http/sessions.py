"""Registry of live MCP sessions and transport counters (feeds the status panel).

A *session* is a legacy SSE stream (``transport="sse"``) or a 2025-era Streamable HTTP session
(``"streamable-http"``). 2026-07-28 clients have no sessions; they are listed as
``"streamable-http-2026"`` entries keyed by client name, version and address, which expire after a
period without requests (the oldest go first beyond :data:`MAX_STATELESS` entries). Everything here
runs on the event loop; nothing blocks.

The registry also decides which Streamable HTTP sessions may be ended (:meth:`SessionRegistry.evictable`,
:meth:`SessionRegistry.overdue`): never one with a request in flight (an open GET stream is one); the
transport carries the decision out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger("comfyui_mcp_bridge")

SSE = "sse"
STREAMABLE = "streamable-http"
STATELESS = "streamable-http-2026"

#: ``observer(event, payload)`` with event one of ``opened``, ``identified``, ``activity``, ``closed``
#: and ``expired`` (a stateless entry aged out; these come in bursts, observers may coalesce them).
Observer = Callable[[str, dict[str, Any]], None]

_ACTIVITY_EVENT_INTERVAL_S = 1.0
_MAX_TEXT = 128
#: Stateless (2026-era) entries kept at most; beyond it the least recently seen are forgotten.
MAX_STATELESS = 1024
_PRIVATE = ("_last_event", "_in_flight", "_idle_since", "_host")


@dataclass
class SessionInfo:
    """What the bridge knows about one session (or one stateless client)."""

    id: str
    transport: str
    connected_since: float
    last_activity: float
    client_name: str | None = None
    client_version: str | None = None
    protocol_version: str | None = None
    peer: str | None = None
    requests: int = 0
    _last_event: float = field(default=0.0, repr=False)
    #: HTTP requests of this session being served now (an open GET stream counts).
    _in_flight: int = field(default=0, repr=False)
    #: When the last request in flight ended (or the session opened).
    _idle_since: float = field(default=0.0, repr=False)
    #: The Host header the session was opened with (to address it as its own client would).
    _host: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe view (times are Unix epoch seconds)."""
        data = asdict(self)
        for key in _PRIVATE:
            data.pop(key)
        return data

    @property
    def in_flight(self) -> int:
        """HTTP requests of this session being served now."""
        return self._in_flight

    @property
    def host(self) -> str | None:
        """The Host header of the request that opened the session."""
        return self._host


def _by_start(info: SessionInfo) -> float:
    return info.connected_since


def _by_idle(info: SessionInfo) -> float:
    return info._idle_since


def _clip(text: object) -> str | None:
    if text is None:
        return None
    value = "".join(ch if ch.isprintable() else "?" for ch in str(text))
    return value[:_MAX_TEXT]


class SessionRegistry:
    """Live sessions plus counters of open streams and requests."""

    def __init__(self, stateless_ttl_s: float = 600.0, clock: Callable[[], float] = time.time) -> None:
        self._sessions: dict[str, SessionInfo] = {}
        #: Stateless entries, least recently seen first.
        self._stateless: OrderedDict[str, SessionInfo] = OrderedDict()
        self._observers: list[Observer] = []
        self._clock = clock
        self.stateless_ttl_s = stateless_ttl_s
        self.counters: dict[str, int] = {
            "open_requests": 0,
            "reading_requests": 0,
            "sse_streams": 0,
            "standalone_streams": 0,
            "requests_total": 0,
            "calls_in_flight": 0,
        }
        self.rejections: dict[str, int] = {}
        self.manager_state = "idle"

    # -- observers --

    def add_observer(self, observer: Observer) -> Callable[[], None]:
        """Call ``observer`` on every change; returns a function that removes it."""
        self._observers.append(observer)

        def remove() -> None:
            if observer in self._observers:
                self._observers.remove(observer)

        return remove

    def _emit(self, event: str, info: SessionInfo) -> None:
        payload = info.to_dict()
        for observer in list(self._observers):
            try:
                observer(event, payload)
            except Exception:  # noqa: BLE001 - an observer must never break the transport
                log.exception("comfyui-mcp-bridge: session observer failed")

    # -- sessions --

    def open(
        self, session_id: str, transport: str, *, peer: str | None = None, host: str | None = None
    ) -> SessionInfo:
        """Register a new session (idempotent)."""
        existing = self.get(session_id)
        if existing is not None:
            return existing
        now = self._clock()
        info = SessionInfo(session_id, transport, now, now, peer=peer, _idle_since=now, _host=host)
        if transport == STATELESS:
            self._stateless[session_id] = info
        else:
            self._sessions[session_id] = info
        self._emit("opened", info)
        return info

    def close(self, session_id: str) -> None:
        """Forget a session (idempotent)."""
        info = self._sessions.pop(session_id, None) or self._stateless.pop(session_id, None)
        if info is not None:
            self._emit("closed", info)

    def touch(self, session_id: str | None) -> None:
        """Record a request on a session."""
        info = self.get(session_id) if session_id else None
        if info is None:
            return
        now = self._clock()
        info.last_activity = now
        info.requests += 1
        if info.transport == STATELESS:
            self._stateless.move_to_end(info.id)
        if now - info._last_event >= _ACTIVITY_EVENT_INTERVAL_S:
            info._last_event = now
            self._emit("activity", info)

    def begin(self, session_id: str | None) -> None:
        """A request of this session is being served (until :meth:`end`)."""
        info = self._sessions.get(session_id) if session_id else None
        if info is not None:
            info._in_flight += 1

    def end(self, session_id: str | None) -> None:
        """A request counted by :meth:`begin` is over."""
        info = self._sessions.get(session_id) if session_id else None
        if info is not None and info._in_flight > 0:
            info._in_flight -= 1
            if info._in_flight == 0:
                info._idle_since = self._clock()

    def evictable(self, transport: str = STREAMABLE) -> SessionInfo | None:
        """The least recently used session of ``transport`` with nothing in flight, if any."""
        idle = (s for s in self._sessions.values() if s.transport == transport and s._in_flight == 0)
        return min(idle, key=_by_idle, default=None)

    def overdue(self, idle_s: float, handshake_s: float, transport: str = STREAMABLE) -> list[SessionInfo]:
        """Sessions of ``transport`` with nothing in flight that were idle for ``idle_s``, or that sent
        nothing after ``initialize`` within ``handshake_s`` of opening."""
        now = self._clock()

        def due(s: SessionInfo) -> bool:
            never_used = s.requests == 0 and now - s.connected_since >= handshake_s
            return now - s._idle_since >= idle_s or never_used

        return [
            s for s in self._sessions.values() if s.transport == transport and s._in_flight == 0 and due(s)
        ]

    def identify(self, session_id: str, name: object, version: object, protocol_version: object) -> None:
        """Attach the client's self-description (from ``initialize``) to a session."""
        info = self._sessions.get(session_id)
        if info is None:
            return
        info.client_name, info.client_version = _clip(name), _clip(version)
        info.protocol_version = _clip(protocol_version) or info.protocol_version
        self._emit("identified", info)

    def seen_stateless(
        self, name: object, version: object, protocol_version: object, peer: str | None
    ) -> None:
        """Record a request from a 2026-era (sessionless) client."""
        key_src = f"{_clip(name)}\0{_clip(version)}\0{peer}".encode("utf-8", "replace")
        key = "2026-" + hashlib.sha256(key_src).hexdigest()[:16]
        info = self._stateless.get(key)
        if info is None:
            self._expire(room_for=1)
            info = self.open(key, STATELESS, peer=peer)
            info.client_name, info.client_version = _clip(name), _clip(version)
            info.protocol_version = _clip(protocol_version)
            self._emit("identified", info)
        self.touch(key)

    def _expire(self, room_for: int = 0) -> None:
        """Forget stateless entries unseen for the TTL (and the oldest beyond :data:`MAX_STATELESS`).

        Entries are removed first and announced after, so an observer that asks for a snapshot
        meanwhile finds nothing left to expire; the cost is O(entries removed).
        """
        limit = self._clock() - self.stateless_ttl_s
        gone: list[SessionInfo] = []
        while self._stateless:
            oldest = next(iter(self._stateless.values()))
            if oldest.last_activity >= limit and len(self._stateless) + room_for <= MAX_STATELESS:
                break
            gone.append(self._stateless.popitem(last=False)[1])
        for info in gone:
            self._emit("expired", info)

    def get(self, session_id: str | None) -> SessionInfo | None:
        """The session with this id, if live."""
        if session_id is None:
            return None
        return self._sessions.get(session_id) or self._stateless.get(session_id)

    def count(self, transport: str | None = None) -> int:
        """Live sessions (SSE and Streamable HTTP; stateless clients only when asked by name)."""
        if transport is None:
            return len(self._sessions)
        if transport == STATELESS:
            return len(self._stateless)
        return sum(1 for s in self._sessions.values() if s.transport == transport)

    def all(self) -> list[SessionInfo]:
        """Every live session and stateless entry."""
        return [*self._sessions.values(), *self._stateless.values()]

    # -- counters --

    def add(self, counter: str, delta: int = 1) -> None:
        """Adjust a counter."""
        self.counters[counter] = self.counters.get(counter, 0) + delta

    def rejected(self, reason: str) -> None:
        """Count a request the gate refused."""
        self.rejections[reason] = self.rejections.get(reason, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe state for the status panel and tests."""
        self._expire()
        try:
            loop_tasks: int | None = len(asyncio.all_tasks())
        except RuntimeError:
            loop_tasks = None
        return {
            "sessions": [s.to_dict() for s in sorted(self.all(), key=_by_start)],
            "counts": {
                "sessions": self.count(),
                "sse_sessions": self.count(SSE),
                "streamable_sessions": self.count(STREAMABLE),
                "stateless_clients": self.count(STATELESS),
                **self.counters,
                "loop_tasks": loop_tasks,
            },
            "rejections": dict(self.rejections),
            "manager": self.manager_state,
        }
