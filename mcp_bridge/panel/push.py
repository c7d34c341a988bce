"""Changes pushed to every open ComfyUI page, coalesced per subject (see :mod:`.routes`)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from ..http import security

log = logging.getLogger("comfyui_mcp_bridge")

EVENT_PREFIX = "mcp_bridge."
PUSH_INTERVAL_S = 0.25

Send = Callable[[str, Any], None]


class Pusher:
    """Send JSON-safe events to the browser, at most one per subject every ``interval`` seconds.

    ``push(subject, event, build)`` sends ``build()`` at once when the subject was quiet for
    ``interval`` (or when ``urgent``); otherwise one delayed send carries the latest ``build()`` when
    the interval ends. Call on the event loop (calls from other threads are handed over to it).
    """

    def __init__(
        self,
        send: Send,
        loop: asyncio.AbstractEventLoop,
        interval: float = PUSH_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._loop = loop
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._pending: dict[str, tuple[str, Callable[[], Any]]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._errors = security.RateLimitedLog()
        self.sent = 0

    def push(self, subject: str, event: str, build: Callable[[], Any], *, urgent: bool = False) -> None:
        """Schedule ``build()`` as event ``mcp_bridge.<event>``; see the class docstring."""
        if not self._on_loop():
            self._loop.call_soon_threadsafe(lambda: self.push(subject, event, build, urgent=urgent))
            return
        now = self._clock()
        last = self._last.get(subject)
        if urgent or last is None or now - last >= self._interval:
            self._pending.pop(subject, None)
            timer = self._timers.pop(subject, None)
            if timer is not None:
                timer.cancel()
            self._emit(subject, event, build, now)
            return
        self._pending[subject] = (event, build)
        if subject not in self._timers:
            self._timers[subject] = self._loop.call_later(last + self._interval - now, self._flush, subject)

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def _flush(self, subject: str) -> None:
        self._timers.pop(subject, None)
        item = self._pending.pop(subject, None)
        if item is not None:
            self._emit(subject, item[0], item[1], self._clock())

    def _emit(self, subject: str, event: str, build: Callable[[], Any], now: float) -> None:
        self._last[subject] = now
        if len(self._last) > 256:
            self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
        try:
            # A fresh copy made of plain JSON values: nothing ComfyUI's send loop could choke on.
            payload = json.loads(json.dumps(build(), allow_nan=False))
        except (TypeError, ValueError):
            self._errors.warning(
                event, "comfyui-mcp-bridge: dropped a panel update (%s) that is not JSON", event
            )
            return
        except Exception:  # noqa: BLE001 - an update must never break the caller (a job hook)
            log.exception("comfyui-mcp-bridge: building a panel update (%s) failed", event)
            return
        try:
            self._send(EVENT_PREFIX + event, payload)
            self.sent += 1
        except Exception:  # noqa: BLE001
            log.exception("comfyui-mcp-bridge: sending a panel update (%s) failed", event)

    def close(self) -> None:
        """Drop pending sends."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending.clear()
