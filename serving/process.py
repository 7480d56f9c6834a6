"""Run the scoring API as a child process and wait until it answers: for the end-to-end tests,
the load and restart tests and the benchmark, which all need a real server.

Where it sits: beside ``nonrecours serve``, which it starts with the given settings; nothing in
the service depends on it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ApiProcess:
    """``nonrecours serve`` in its own process group, its output in ``log_path``."""

    tracking_uri: str
    decision_log_url: str
    secrets_file: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiProcess:
        # MLflow's set_experiment leaves MLFLOW_* variables behind; the server must not inherit them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.setdefault("BENTOML_DO_NOT_TRACK", "True")
        cli = Path(sys.executable).parent / "nonrecours"
        args = [str(cli), "serve", "--port", str(self.port), "--tracking-uri", self.tracking_uri, "--decision-log", self.decision_log_url, "--secrets", str(self.secrets_file)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        return self

    def wait(self, path: str = "/readyz", status: int = 200, timeout: float = 180.0) -> None:
        """Block until ``path`` answers ``status``; raise with the server's log if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(self.url + path, timeout=5).status_code == status:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.url}{path} did not answer {status} within {timeout:.0f} s:\n{self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (BentoML runs an arbiter and workers) and reap it."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __enter__(self) -> ApiProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill(signal.SIGTERM)
