"""What every panel route group shares: its refusal, its error answer, a job as the panel shows it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..engine.jobs import Job

MAX_BODY_BYTES = 16 * 1024
NO_STORE = {"Cache-Control": "no-store"}


class Refused(Exception):
    """A request the panel routes turn down: HTTP status and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(exc: Refused) -> web.Response:
    return web.json_response({"error": exc.message}, status=exc.status, headers=NO_STORE)


def job_view(job: Job) -> dict[str, Any]:
    """A job as the panel shows it (JSON-safe)."""
    data = job.to_dict()
    data["cancel_requested"] = job.cancel_requested
    return data
