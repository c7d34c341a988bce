"""Run a real ComfyUI (CPU) with this extension and the tiny models — for tests and for trying it out.

``python -m testbed.server`` runs ComfyUI 0.3.75 on 127.0.0.1:8188 in the foreground and prints the MCP
URLs. Tests use :class:`ComfyServer` to start one on a free port with temporary folders.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("MCP_BRIDGE_CACHE", Path.home() / ".cache" / "comfyui-mcp-bridge"))
VENV_PYTHON = CACHE / "venv" / "bin" / "python"
MODELS = CACHE / "models"
VERSIONS = ("0.3.75", "0.3.52")
LATEST = VERSIONS[0]
# A frontend with App Mode (extra.linearData), installed by install.sh in overlay/frontend-<version>.
APP_MODE_FRONTEND = "1.49.6"
# The newest comfyui-frontend-package on PyPI when last checked (the browser tests also run on it).
NEWEST_FRONTEND = "1.58.1"
EXTENSION_DIR_NAME = "comfyui-mcp-bridge"
TEST_NODES = Path(__file__).resolve().parent / "custom_nodes"  # test-only nodes, linked on request


def comfyui_dir(version: str) -> Path:
    """Where install.sh put the ComfyUI tree of ``version``."""
    return CACHE / "comfyui" / version


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_model_paths(path: Path, *, inpaint_models: bool = False, family_models: bool = False) -> None:
    # One section pointing ComfyUI at the generated tiny models (YAML is a superset of JSON); with
    # inpaint_models a second one adds the inpainting checkpoint to the checkpoints.
    section = {
        "base_path": str(MODELS),
        "checkpoints": "checkpoints",
        "loras": "loras",
        "upscale_models": "upscale_models",
        "controlnet": "controlnet",
    }
    sections: dict[str, dict[str, str]] = {"tiny_models": section}
    if inpaint_models:
        sections["tiny_inpaint_models"] = {"base_path": str(MODELS / "inpaint"), "checkpoints": "checkpoints"}
    if family_models:  # the tiny SD3 split files (testbed/tiny_families.py)
        folders = ("diffusion_models", "text_encoders", "vae", "loras")
        sections["tiny_family_models"] = {"base_path": str(MODELS / "families"), **{f: f for f in folders}}
    path.write_text(json.dumps(sections, indent=2))


def _detach_and_follow_parent() -> None:
    # In the child before exec: its own session (SIGTERM reaches the whole group, a shell's SIGINT does
    # not), and on Linux a SIGTERM when the process that started it dies, so no server outlives a
    # killed test run.
    os.setsid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ComfyServer:
    """One ComfyUI process with this extension linked into its ``custom_nodes``."""

    def __init__(
        self,
        version: str = LATEST,
        *,
        port: int | None = None,
        listen: str = "127.0.0.1",
        extra_args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        base_dir: Path | None = None,
        test_nodes: Sequence[str] = (),
        frontend: str | None = None,
        inpaint_models: bool = False,
        family_models: bool = False,
    ) -> None:
        self.version = version
        self.frontend = frontend  # a comfyui-frontend-package version instead of the one ComfyUI pins
        self.port = port or free_port()
        self.listen = listen
        self.extra_args = list(extra_args)
        self.extra_env = dict(env or {})
        self.test_nodes = list(test_nodes)  # folders of testbed/custom_nodes to link into custom_nodes
        self.inpaint_models = inpaint_models  # also serve the tiny inpainting checkpoint (a 2nd one)
        self.family_models = family_models  # also serve the tiny SD3 split files (a 2nd image model)
        self._own_tmp = base_dir is None
        self.base_dir = base_dir or Path(tempfile.mkdtemp(prefix=f"comfy-{version}-"))
        self.log_path = self.base_dir / "comfyui.log"
        self.process: subprocess.Popen[bytes] | None = None

    # Folders ComfyUI uses under its base directory.
    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    @property
    def input_dir(self) -> Path:
        return self.base_dir / "input"

    @property
    def user_dir(self) -> Path:
        return self.base_dir / "user"

    @property
    def url(self) -> str:
        """Base URL of the server (always reached through loopback)."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts this server."""
        return [
            str(VENV_PYTHON),
            "main.py",
            "--cpu",
            "--listen",
            self.listen,
            "--port",
            str(self.port),
            "--base-directory",
            str(self.base_dir),
            "--extra-model-paths-config",
            str(self.base_dir / "extra_model_paths.yaml"),
            "--database-url",
            "sqlite:///:memory:",
            "--use-pytorch-cross-attention",  # much faster than the default attention on CPU
            *self.extra_args,
        ]

    def environment(self) -> dict[str, str]:
        """Environment of the server: 0.3.52 gets its own frontend packages first on the path, and so
        does a server started with another ``frontend``."""
        env = dict(os.environ)
        overlay = CACHE / "overlay" / (f"frontend-{self.frontend}" if self.frontend else self.version)
        if self.frontend and not (overlay / ".done").is_file():
            raise RuntimeError(
                f"frontend {self.frontend} is not installed at {overlay}: run testbed/install.sh"
            )
        if overlay.is_dir():
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(overlay), env.get("PYTHONPATH")]))
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 120.0, *, wait: bool = True) -> ComfyServer:
        """Start ComfyUI and wait until the extension's health route answers (``wait=False``: call
        :meth:`wait_ready` later, e.g. after starting others; the process must be started, and
        waited on, from the main thread: it is stopped when the thread that started it ends)."""
        tree = comfyui_dir(self.version)
        if not (tree / "main.py").is_file():
            raise RuntimeError(f"ComfyUI {self.version} is not installed at {tree}: run testbed/install.sh")
        for sub in ("custom_nodes", "output", "input", "user"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        link = self.base_dir / "custom_nodes" / EXTENSION_DIR_NAME
        if not link.exists():
            link.symlink_to(REPO, target_is_directory=True)
        for name in self.test_nodes:
            node_link = self.base_dir / "custom_nodes" / name
            if not node_link.exists():
                node_link.symlink_to(TEST_NODES / name, target_is_directory=True)
        _write_model_paths(
            self.base_dir / "extra_model_paths.yaml",
            inpaint_models=self.inpaint_models,
            family_models=self.family_models,
        )
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log_file = log
        self.process = subprocess.Popen(
            self.command(),
            cwd=tree,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_detach_and_follow_parent,  # noqa: PLW1509 - no threads are started before this
        )
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the extension's health route answers (stops the server and raises after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.url + "/mcp-bridge/health", timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ComfyUI did not become ready in {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop the server with SIGTERM (SIGKILL after ``timeout``); return its exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._log_file.close()
        return proc.returncode

    def log_text(self) -> str:
        """Everything the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 80) -> str:
        """The last ``lines`` lines of the server log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def get_json(self, path: str) -> object:
        """GET a JSON route of the server (blocking; for tests and scripts)."""
        with urllib.request.urlopen(self.url + path, timeout=30) as resp:  # noqa: S310
            return json.loads(resp.read())

    def __enter__(self) -> ComfyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(version: str = LATEST, **kwargs: object) -> Iterator[ComfyServer]:
    """Context manager: a started :class:`ComfyServer`, stopped on exit."""
    server = ComfyServer(version, **kwargs)  # type: ignore[arg-type]
    server.start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ComfyUI with the bridge in the foreground (Ctrl-C to stop)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", default=LATEST, choices=VERSIONS, help="ComfyUI version")
    parser.add_argument("--port", type=int, default=8188)
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument(
        "--frontend",
        help=f"a comfyui-frontend-package installed by install.sh ({APP_MODE_FRONTEND}, {NEWEST_FRONTEND})",
    )
    parser.add_argument("--base-dir", type=Path, default=CACHE / "run", help="output/input/user folders")
    parser.add_argument("extra", nargs="*", help="more ComfyUI arguments (after --)")
    args = parser.parse_args(argv)
    server = ComfyServer(
        args.version,
        port=args.port,
        listen=args.listen,
        extra_args=args.extra,
        base_dir=args.base_dir,
        frontend=args.frontend,
    )
    t0 = time.monotonic()
    server.start()
    wildcard = args.listen in ("0.0.0.0", "::")  # noqa: S104 - only to print a reachable URL
    url = f"http://{'127.0.0.1' if wildcard else args.listen}:{args.port}"
    print(f"ComfyUI {args.version} with comfyui-mcp-bridge is up in {time.monotonic() - t0:.1f} s")
    print(f"  ComfyUI web UI:             {url}/")
    print(f"  MCP (Streamable HTTP):      {url}/mcp")
    print(f"  MCP (legacy SSE):           {url}/mcp/sse")
    print(f"  health:                     {url}/mcp-bridge/health")
    print(f"  outputs in {server.output_dir}; log: {server.log_path}")
    print("Ctrl-C stops it.")
    sys.stdout.flush()
    try:
        assert server.process is not None
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
