"""What a legacy SSE session owes its client: requests posted whose replies are not on the stream yet.

``POST /mcp/messages`` answers 202 at once and the reply travels later on the session's event stream.
A client that never reads that stream would otherwise make the server hold one task and one reply per
request without bound; counting the requests still unanswered lets the transport refuse more of them.
"""

from __future__ import annotations

import json
from collections import Counter

_DATA = b"data: "


class Backlog:
    """Ids (as JSON text) of the requests posted to one SSE session and not yet answered on its stream."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ids: Counter[str] = Counter()
        self.size = 0

    def admit(self, ids: list[str]) -> bool:
        """Count these requests in, unless that would exceed the limit (then nothing changes)."""
        if ids and self.size + len(ids) > self.limit:
            return False
        self._ids.update(ids)
        self.size += len(ids)
        return True

    def written(self, frame: bytes) -> None:
        """An SSE frame went out on the stream: if it answers a counted request, count it out."""
        if not self.size or not frame.startswith(b"event: message"):
            return
        start = frame.find(_DATA)
        if start < 0:
            return
        end = frame.find(b"\r\n", start)
        try:
            message = json.loads(frame[start + len(_DATA) : end if end >= 0 else None])
        except ValueError:
            return
        if not isinstance(message, dict) or "method" in message or message.get("id") is None:
            return  # a notification or a request of the server's own
        key = json.dumps(message["id"])
        if self._ids[key] > 0:
            self._ids[key] -= 1
            self.size -= 1
            if not self._ids[key]:
                del self._ids[key]
