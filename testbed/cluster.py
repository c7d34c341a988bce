"""Two CPU ComfyUIs with the bridge behind HAProxy on loopback: one MCP URL, several instances.

``python -m testbed.cluster`` (``make cluster``) runs them in the foreground and prints the URL. The
HAProxy configuration is ``testbed/haproxy.cfg.in`` filled for these two instances (``a`` and ``b``),
each knowing the other as its peer. Tests use :class:`Cluster`.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from testbed.server import LATEST, VERSIONS, ComfyServer, free_port

CONFIG_TEMPLATE = Path(__file__).resolve().parent / "haproxy.cfg.in"
INSTANCE_IDS = ("a", "b")


class HaproxyMissing(RuntimeError):
    """HAProxy is not installed (testbed/install.sh installs Debian's package)."""


def haproxy_version() -> str:
    """The first line of ``haproxy -v`` (raises HaproxyMissing when there is none)."""
    binary = shutil.which("haproxy")
    if binary is None:
        raise HaproxyMissing("haproxy is not installed: run testbed/install.sh (Debian package haproxy)")
    out = subprocess.run([binary, "-v"], capture_output=True, text=True, check=True, timeout=10).stdout
    return out.splitlines()[0].strip()


def render_config(front_port: int, backends: dict[str, int]) -> str:
    """``haproxy.cfg.in`` for a frontend on ``front_port`` and two instances ``{id: port}``."""
    (a_id, a_port), (b_id, b_port) = backends.items()
    values = {
        "@BIND@": f"127.0.0.1:{front_port}",
        "@A_ID@": a_id,
        "@A_ADDR@": f"127.0.0.1:{a_port}",
        "@B_ID@": b_id,
        "@B_ADDR@": f"127.0.0.1:{b_port}",
    }
    text = CONFIG_TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace(key, value)
    return text


class Cluster:
    """ComfyUI ``a`` and ``b`` (peers of each other) and HAProxy in front of them."""

    def __init__(self, version: str = LATEST, *, env: dict[str, str] | None = None, port: int | None = None):
        self.front_port = port or free_port()
        self.base_dir = Path(tempfile.mkdtemp(prefix="comfy-cluster-"))
        ports = {instance: free_port() for instance in INSTANCE_IDS}
        peers = ",".join(f"{i}=http://127.0.0.1:{p}/mcp" for i, p in ports.items())
        hosts = f"127.0.0.1:{self.front_port},localhost:{self.front_port}"
        self.instances = {
            instance: ComfyServer(
                version,
                port=port,
                base_dir=self.base_dir / instance,
                env={
                    **(env or {}),
                    "COMFYUI_MCP_INSTANCE_ID": instance,
                    "COMFYUI_MCP_PEERS": peers,  # the same list everywhere: each skips itself
                    "COMFYUI_MCP_EXTRA_ALLOWED_HOSTS": hosts,  # requests arrive with the balancer's Host
                },
            )
            for instance, port in ports.items()
        }
        self.config_path = self.base_dir / "haproxy.cfg"
        self.log_path = self.base_dir / "haproxy.log"
        self.haproxy: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The one URL in front of every instance."""
        return f"http://127.0.0.1:{self.front_port}"

    def start(self, timeout: float = 180.0) -> Cluster:
        """Start both ComfyUIs (side by side), then HAProxy; wait until it serves the health route."""
        haproxy_version()
        try:
            for server in self.instances.values():
                server.start(wait=False)
            for server in self.instances.values():
                server.wait_ready(timeout)
            self.config_path.write_text(
                render_config(self.front_port, {i: s.port for i, s in self.instances.items()})
            )
            with self.log_path.open("wb") as log:
                self.haproxy = subprocess.Popen(  # noqa: S603 - our own config, a fixed binary
                    ["haproxy", "-db", "-f", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT
                )
            self._wait_for_front(timeout=20.0)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_front(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.haproxy is not None and self.haproxy.poll() is not None:
                raise RuntimeError(f"haproxy exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(self.url + "/mcp-bridge/health", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            time.sleep(0.1)
        raise RuntimeError(f"haproxy did not serve {self.url} within {timeout} s")

    def stop(self) -> None:
        """Stop HAProxy and both ComfyUIs."""
        if self.haproxy is not None and self.haproxy.poll() is None:
            self.haproxy.terminate()
            try:
                self.haproxy.wait(10)
            except subprocess.TimeoutExpired:
                self.haproxy.kill()
                self.haproxy.wait(10)
        for server in self.instances.values():
            server.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)

    @contextlib.contextmanager
    def running(self) -> Iterator[Cluster]:
        """Start, yield, stop."""
        self.start()
        try:
            yield self
        finally:
            self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the cluster in the foreground (Ctrl-C to stop)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", default=LATEST, choices=VERSIONS, help="ComfyUI version")
    parser.add_argument("--port", type=int, default=8190, help="HAProxy's port")
    args = parser.parse_args(argv)
    print(haproxy_version())
    cluster = Cluster(args.version, port=args.port)
    with cluster.running():
        print(f"MCP, one URL for {len(cluster.instances)} instances: {cluster.url}/mcp")
        print(f"  legacy SSE: {cluster.url}/mcp/sse")
        for instance, server in cluster.instances.items():
            print(f"  instance {instance}: {server.url}  log: {server.log_path}")
        print(f"  haproxy: {cluster.config_path}")
        with contextlib.suppress(KeyboardInterrupt):
            while cluster.haproxy is not None and cluster.haproxy.poll() is None:
                time.sleep(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
