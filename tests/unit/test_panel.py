"""The panel backend's pure parts: throttled pushes, the same-origin rule, token file, folder checks."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import stat
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from mcp_bridge.comfyui.adapter import ServerOptions
from mcp_bridge.comfyui.backend import ComfyBackend
from mcp_bridge.config import Settings
from mcp_bridge.engine.jobs import JobRegistry
from mcp_bridge.engine.runner import JobRunner
from mcp_bridge.http import security
from mcp_bridge.http.sessions import SessionRegistry
from mcp_bridge.panel import routes as panel
from tests.unit.comfy_events import feed, finish


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make_pusher(interval: float = 0.25) -> tuple[panel.Pusher, list[tuple[str, Any]], FakeClock]:
    sent: list[tuple[str, Any]] = []
    clock = FakeClock()
    pusher = panel.Pusher(
        lambda event, data: sent.append((event, data)), asyncio.get_running_loop(), interval, clock
    )
    return pusher, sent, clock


async def flush_timers(pusher: panel.Pusher) -> None:
    """Run the pending delayed sends now (instead of waiting for their timers)."""
    for subject in list(pusher._timers):
        pusher._timers[subject].cancel()
        pusher._flush(subject)


def test_a_quiet_subject_is_sent_at_once() -> None:
    async def run() -> list[tuple[str, Any]]:
        pusher, sent, _clock = make_pusher()
        pusher.push("job:1", "job", lambda: {"progress": 0.1})
        pusher.push("job:2", "job", lambda: {"progress": 0.2})
        return sent

    assert asyncio.run(run()) == [
        ("mcp_bridge.job", {"progress": 0.1}),
        ("mcp_bridge.job", {"progress": 0.2}),
    ]


def test_a_burst_is_coalesced_into_one_delayed_send_of_the_latest_state() -> None:
    async def run() -> tuple[list[tuple[str, Any]], int]:
        pusher, sent, clock = make_pusher()
        pusher.push("job:1", "job", lambda: {"step": 0})
        for step in range(1, 50):
            clock.now += 0.001
            pusher.push("job:1", "job", lambda step=step: {"step": step})
        pending = len(pusher._timers)
        await flush_timers(pusher)
        return sent, pending

    sent, pending = asyncio.run(run())
    assert pending == 1
    assert sent == [("mcp_bridge.job", {"step": 0}), ("mcp_bridge.job", {"step": 49})]


def test_the_delayed_send_fires_by_itself_when_the_interval_ends() -> None:
    async def run() -> list[tuple[str, Any]]:
        sent: list[tuple[str, Any]] = []
        done = asyncio.Event()

        def send(event: str, data: Any) -> None:
            sent.append((event, data))
            if len(sent) == 2:
                done.set()

        pusher = panel.Pusher(send, asyncio.get_running_loop(), interval=0.02)
        pusher.push("s", "sessions", lambda: 1)
        pusher.push("s", "sessions", lambda: 2)
        await asyncio.wait_for(done.wait(), 5)
        return sent

    assert asyncio.run(run()) == [("mcp_bridge.sessions", 1), ("mcp_bridge.sessions", 2)]


def test_an_urgent_change_goes_out_at_once_and_replaces_the_pending_one() -> None:
    async def run() -> tuple[list[tuple[str, Any]], int]:
        pusher, sent, clock = make_pusher()
        pusher.push("job:1", "job", lambda: "queued")
        clock.now += 0.01
        pusher.push("job:1", "job", lambda: "progress")
        clock.now += 0.01
        pusher.push("job:1", "job", lambda: "succeeded", urgent=True)
        return sent, len(pusher._timers)

    sent, timers = asyncio.run(run())
    assert [data for _, data in sent] == ["queued", "succeeded"]
    assert timers == 0


@pytest.mark.parametrize("bad", [object(), {"x": math.nan}, {"x": {1, 2}}, {1j: "key"}], ids=repr)
def test_a_payload_that_is_not_json_is_dropped_and_never_reaches_comfyui(bad: object) -> None:
    async def run() -> list[tuple[str, Any]]:
        pusher, sent, clock = make_pusher()
        pusher.push("a", "job", lambda: bad)
        clock.now += 1
        pusher.push("a", "job", lambda: {"ok": True})
        return sent

    assert asyncio.run(run()) == [("mcp_bridge.job", {"ok": True})]


def test_a_failing_builder_or_sender_never_raises_into_the_caller() -> None:
    async def run() -> None:
        def boom() -> Any:
            raise RuntimeError("bug")

        pusher = panel.Pusher(lambda e, d: boom(), asyncio.get_running_loop())
        pusher.push("a", "job", boom)
        pusher.push("b", "job", lambda: 1)

    asyncio.run(run())


def test_the_payload_sent_is_a_fresh_copy() -> None:
    async def run() -> tuple[dict[str, Any], list[tuple[str, Any]]]:
        pusher, sent, _ = make_pusher()
        original = {"outputs": [{"filename": "a.png"}]}
        pusher.push("a", "job", lambda: original)
        return original, sent

    original, sent = asyncio.run(run())
    original["outputs"][0]["filename"] = "changed"
    assert sent[0][1] == {"outputs": [{"filename": "a.png"}]}


def test_a_push_from_another_thread_is_sent_on_the_loop() -> None:
    async def run() -> tuple[bool, Any]:
        loop = asyncio.get_running_loop()
        arrived = asyncio.Event()
        seen: list[tuple[bool, Any]] = []

        def send(event: str, data: Any) -> None:
            seen.append((threading.current_thread() is threading.main_thread(), data))
            arrived.set()

        pusher = panel.Pusher(send, loop)
        thread = threading.Thread(target=pusher.push, args=("a", "job", lambda: "from thread"))
        thread.start()
        await asyncio.wait_for(arrived.wait(), 5)
        thread.join()
        return seen[0]

    assert asyncio.run(run()) == (True, "from thread")


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:8188", "127.0.0.1:8188", True),
        ("http://LOCALHOST:8188", "localhost:8188", True),
        ("https://comfy.example", "comfy.example", True),
        ("https://comfy.example:443", "comfy.example", True),
        ("http://comfy.example", "comfy.example:80", True),
        ("http://[::1]:8188", "[::1]:8188", True),
        ("http://127.0.0.1:8189", "127.0.0.1:8188", False),
        ("http://localhost:8188", "127.0.0.1:8188", False),
        ("https://comfy.example", "comfy.example:80", False),
        ("null", "127.0.0.1:8188", False),
        ("file://", "127.0.0.1:8188", False),
        ("http://user@127.0.0.1:8188", "127.0.0.1:8188", False),
        ("http://127.0.0.1:8188/path", "127.0.0.1:8188", False),
        ("http://127.0.0.1:99999", "127.0.0.1:99999", False),
        ("", "127.0.0.1:8188", False),
        # An Origin is scheme://host[:port] only: the gate (http/security.py) refuses more, so does the panel.
        ("http://127.0.0.1:8188?x=1", "127.0.0.1:8188", False),
        ("http://127.0.0.1:8188#top", "127.0.0.1:8188", False),
        ("http://127.0.0.1:8188/?", "127.0.0.1:8188", True),
    ],
)
def test_same_origin_compares_host_and_port(origin: str, host: str, same: bool) -> None:
    assert panel.same_origin(origin, host) is same


def test_a_new_token_replaces_the_file_with_owner_only_permissions(tmp_path: Path) -> None:
    first = security.regenerate_token(tmp_path)
    second = security.regenerate_token(tmp_path)
    path = tmp_path / "comfyui-mcp-bridge.token"
    assert first != second and len(second) >= 32
    assert path.read_text().strip() == second
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


@pytest.mark.skipif(os.name != "posix", reason="symlinks")
def test_a_new_token_replaces_a_symlink_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (tmp_path / "comfyui-mcp-bridge.token").symlink_to(victim)
    security.regenerate_token(tmp_path)
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "comfyui-mcp-bridge.token").is_symlink()


def test_an_output_folder_is_accepted_in_its_absolute_form(tmp_path: Path) -> None:
    assert panel.check_output_folder(str(tmp_path)) == str(tmp_path)
    assert panel.check_output_folder(str(tmp_path) + "/") == str(tmp_path)
    assert panel.check_output_folder(str(tmp_path) + "/./") == str(tmp_path)


@pytest.mark.parametrize(
    "value",
    ["", "   ", "/", "//", "relative/dir", "~", "/root/../etc", "/nonexistent-mcpb-folder", 3, None],
)
def test_unusable_output_folders_are_refused(value: object) -> None:
    with pytest.raises(panel.Refused) as caught:
        panel.check_output_folder(value)
    assert caught.value.status == 400 and caught.value.message.startswith("Folder refused")


def test_home_and_its_ancestors_are_refused() -> None:
    home = Path.home()
    for folder in (home, *home.parents):
        with pytest.raises(panel.Refused):
            panel.check_output_folder(str(folder))


def _panel(tmp_path: Path, sent: list[tuple[str, Any]]) -> tuple[panel.Panel, JobRegistry]:
    registry = JobRegistry()
    services = SimpleNamespace(registry=registry, settings=Settings(), runner=None, comfy=None)
    options = ServerOptions(
        listen="127.0.0.1", port=8188, tls=False, cors_origin=None, user_directory=str(tmp_path)
    )
    board = panel.Panel(services, None, options, lambda e, d: sent.append((e, d)), asyncio.get_running_loop())
    board.observe()
    return board, registry


def test_job_changes_are_pushed_and_a_refused_job_is_removed(tmp_path: Path) -> None:
    async def run() -> list[tuple[str, Any]]:
        sent: list[tuple[str, Any]] = []
        board, registry = _panel(tmp_path, sent)
        prompt = {"1": {"class_type": "KSampler", "inputs": {}}}
        # ComfyUI's events arrive in turns of the loop; the pushes follow each turn
        registry.create("refused", "generate_image", prompt, "prompt='<b>x</b>'")
        await asyncio.sleep(0)
        registry.discard("refused")
        await asyncio.sleep(0)
        registry.create("ok", "generate_image", prompt)
        await asyncio.sleep(0)
        feed(registry, "execution_start", {"prompt_id": "ok"})
        await asyncio.sleep(0)
        for step in range(1, 30):
            feed(registry, "progress", {"prompt_id": "ok", "node": "1", "value": step, "max": 30})
            await asyncio.sleep(0)
        finish(registry, "ok", {"status": {"status_str": "success", "messages": []}, "outputs": {}})
        await asyncio.sleep(0)
        board.close()
        return sent

    sent = asyncio.run(run())
    assert all(event == "mcp_bridge.job" for event, _ in sent)
    first, removed, *rest = (data for _, data in sent)
    assert first["job"]["job_id"] == "refused" and first["job"]["summary"] == "prompt='<b>x</b>'"
    assert removed["removed"] == "refused" and removed["active"] == 0
    states = [data["job"]["state"] for data in rest]
    # queued and running go out at once; the burst of 29 progress events is held back (throttled)
    assert states == ["queued", "running", "succeeded"]
    assert rest[-1]["active"] == 0


def test_a_finished_job_wakes_its_caller_before_the_panel_is_told(tmp_path: Path) -> None:
    async def run() -> tuple[list[str], list[str]]:
        sent: list[tuple[str, Any]] = []
        board, registry = _panel(tmp_path, sent)
        job = registry.create("ok", "generate_image", {"1": {"class_type": "SaveImage", "inputs": {}}})
        await asyncio.sleep(0)
        comfy = SimpleNamespace(has_run=lambda _id: True, unwatch=lambda _id: None)
        runner = JobRunner(cast(ComfyBackend, comfy), registry)
        seen_by_caller: list[str] = []

        async def caller() -> None:
            assert await runner.follow(job, None, timeout=5)
            seen_by_caller.extend(data["job"]["state"] for _, data in sent)

        waiting = asyncio.create_task(caller())
        await asyncio.sleep(0)
        feed(registry, "execution_start", {"prompt_id": "ok"})
        finish(registry, "ok", {"status": {"status_str": "success", "messages": []}, "outputs": {}})
        await waiting
        await asyncio.sleep(0)
        board.close()
        return seen_by_caller, [data["job"]["state"] for _, data in sent]

    seen_by_caller, pushed = asyncio.run(run())
    assert seen_by_caller == ["queued"]  # the caller resumed before the panel push of its job's end
    assert pushed == ["queued", "succeeded"]  # running and succeeded in one turn: one push, the latest


def test_many_stateless_clients_expiring_together_cost_one_pass_and_no_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The panel observes the session registry and builds its push from a snapshot, which expires
    # stale entries: expiry must not re-enter itself through the observer (it once recursed as deep
    # as the number of expired entries, into RecursionError tracebacks by the hundred).
    clock = FakeClock()
    sessions = SessionRegistry(stateless_ttl_s=600.0, clock=clock)
    many = 400

    async def run() -> list[tuple[str, Any]]:
        sent: list[tuple[str, Any]] = []
        services = SimpleNamespace(registry=JobRegistry(), settings=Settings(), runner=None, comfy=None)
        options = ServerOptions(
            listen="127.0.0.1", port=8188, tls=False, cors_origin=None, user_directory=str(tmp_path)
        )
        board = panel.Panel(
            services,
            SimpleNamespace(registry=sessions, policy=panel.Panel._fallback_policy(options, services)),
            options,
            lambda e, d: sent.append((e, d)),
            asyncio.get_running_loop(),
        )
        board.observe()
        for n in range(many):
            sessions.seen_stateless(f"client-{n}", "1.0", "2026-07-28", "127.0.0.1")
        clock.now += 601.0
        sent.clear()
        with caplog.at_level(logging.DEBUG, logger="comfyui_mcp_bridge"):
            snapshot = sessions.snapshot()  # what GET /mcp-bridge/sessions serves
            await flush_timers(board.pusher)
        board.close()
        assert snapshot["sessions"] == [] and snapshot["counts"]["stateless_clients"] == 0
        return sent

    sent = asyncio.run(run())
    assert [r.getMessage() for r in caplog.records] == []
    assert 1 <= len(sent) <= 2  # the burst of expiries is coalesced into one (or two) panel updates
    assert sent[-1][1]["sessions"] == []
