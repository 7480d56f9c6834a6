"""What the benchmarks and the tests share: the command line's path, a command measured in a fresh
process, the machine described, and the scoring API run as a child process (waited for until it
answers) and loaded with concurrent clients, for every benchmark and test that needs a real server.

Where it sits: beside the project, not in it: ``nonrecours serve`` is started with the given
settings, and nothing in the service depends on this module. The benchmarks run as
``python -m bench.NAME`` from the checkout; the tests import it as ``bench.harness``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
CLI = str(Path(sys.executable).parent / "nonrecours")


def measure(args: list[str], output: Path | None = None) -> dict:
    """Run one CLI command in a fresh process; its children's peak RSS is ours to read after.
    ``output``: a file for the command's standard output (else discarded)."""
    start = time.perf_counter()
    code = (
        "import resource, subprocess, sys, json\n"
        f"out = open({str(output)!r}, 'w') if {output is not None} else subprocess.DEVNULL\n"
        "rc = subprocess.run(sys.argv[1:], stdout=out).returncode\n"
        "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'rc': rc, 'max_rss_mb': ru.ru_maxrss / 1024}))\n"
    )
    # stdout carries the measurement; the command's own errors go straight to our stderr.
    out = subprocess.run([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["seconds"] = round(time.perf_counter() - start, 1)
    if res["rc"] != 0:
        raise SystemExit(f"{args} failed with exit code {res['rc']}")
    return res


def machine() -> str:
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB, Python "
        f"{platform.python_version()}"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ApiProcess:
    """``nonrecours serve`` in its own process group, its output in ``log_path``; with ``bento``
    (a tag), ``bentoml serve`` of that built Bento instead, given the same environment."""

    tracking_uri: str
    decision_log_url: str
    secrets_file: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    config: Path | None = None
    extra_env: dict = field(default_factory=dict)
    bento: str | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiProcess:
        # MLflow's set_experiment leaves MLFLOW_* variables behind; the server must not inherit them.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.setdefault("BENTOML_DO_NOT_TRACK", "True")
        env.update(self.extra_env)
        cli = Path(sys.executable).parent / "nonrecours"
        args = [
            str(cli),
            "serve",
            "--port",
            str(self.port),
            "--tracking-uri",
            self.tracking_uri,
            "--decision-log",
            self.decision_log_url,
            "--secrets",
            str(self.secrets_file),
        ]
        if self.config is not None:
            args += ["--config", str(self.config)]
        if self.bento is not None:
            env.update(
                {
                    "MLFLOW_TRACKING_URI": self.tracking_uri,
                    "NONRECOURS_DECISION_LOG_URL": self.decision_log_url,
                    "NONRECOURS_SECRETS_FILE": str(self.secrets_file),
                }
            )
            args = [
                sys.executable,
                "-m",
                "bentoml",
                "serve",
                self.bento,
                "--port",
                str(self.port),
                "--host",
                "127.0.0.1",
            ]
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
        """Signal the server and every process it started, and wait until all are gone. BentoML's
        workers run in sessions of their own: signalling the process group alone leaves them
        serving as orphans on the same port after a SIGKILL (found by the crash test). SIGTERM
        goes to the group (the arbiter stops its workers); whatever survives 60 s is killed."""
        import psutil

        if self.process is None or self.process.poll() is not None:
            return
        try:
            family = [psutil.Process(self.process.pid)]
            family += family[0].children(recursive=True)
        except psutil.NoSuchProcess:
            family = []
        targets = family if sig == signal.SIGKILL else family[:1]
        for p in targets:
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                os.killpg(p.pid, sig) if p.pid == self.process.pid else p.send_signal(sig)
        _, alive = psutil.wait_procs(family, timeout=60)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(alive, timeout=30)
        self.process.wait(timeout=30)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def __enter__(self) -> ApiProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill(signal.SIGTERM)


class Clients:
    """``n`` threads each posting ``per_request`` households per request to ``/score`` until told
    to stop; every household id is new (with ``keep_ids``, each body keeps its own: households
    an earlier batch scored). Records the ids acknowledged (200 with the ids sent back),
    the latency of each answered request and every error. With ``retry_connection_errors`` (a
    server being restarted), refused connections and 5xx are waited out instead of counted."""

    def __init__(
        self,
        url: str,
        headers: dict,
        bodies: list[dict],
        n: int,
        *,
        per_request: int = 1,
        first_id: int = 0,
        retry_connection_errors: bool = False,
        timeout: float = 300,
        keep_ids: bool = False,
    ):
        self.url, self.headers, self.bodies, self.n, self.per_request = url, headers, bodies, n, per_request
        self.ids = itertools.count(first_id)
        self.lock = threading.Lock()
        self.acked: list[int] = []
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.retry = retry_connection_errors
        self.timeout = timeout
        self.elapsed = 0.0
        self.keep_ids = keep_ids
        self.reused = 0

    def _run(self) -> None:
        with httpx.Client(timeout=self.timeout) as client:
            while not self.stop.is_set():
                with self.lock:
                    drawn = [next(self.ids) for _ in range(self.per_request)]
                body = [
                    {**self.bodies[h % len(self.bodies)], **({} if self.keep_ids else {"household_id": h})}
                    for h in drawn
                ]
                ids = [b["household_id"] for b in body]
                started = time.perf_counter()
                try:
                    r = client.post(self.url + "/score", json={"households": body}, headers=self.headers)
                except httpx.HTTPError as exc:
                    if not self.retry:
                        with self.lock:
                            self.errors.append(f"{type(exc).__name__}: {exc}")
                    time.sleep(0.2)
                    continue
                latency = time.perf_counter() - started
                with self.lock:
                    if r.status_code == 200 and [h["household_id"] for h in r.json()] == ids:
                        self.acked.extend(ids)
                        self.reused += sum(h.get("law_result") == "reused" for h in r.json())
                        self.latencies.append(latency)
                    elif not (self.retry and r.status_code >= 500):
                        self.errors.append(f"{r.status_code}: {r.text[:300]}")

    def start(self) -> None:
        self._started = time.perf_counter()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.n)]
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=self.timeout + 60)
        self.elapsed = time.perf_counter() - self._started

    def run_for(self, seconds: float) -> None:
        self.start()
        time.sleep(seconds)
        self.finish()

    def summary(self) -> dict:
        """Throughput and latency of a finished run, as the benchmark reports them."""
        import numpy as np

        pct = lambda q: float(np.percentile(self.latencies, q)) if self.latencies else None  # noqa: E731
        return {
            "clients": self.n,
            "households_per_request": self.per_request,
            "requests": len(self.latencies),
            "errors": len(self.errors),
            "first_error": self.errors[0] if self.errors else None,
            "households_per_second": len(self.acked) / self.elapsed if self.elapsed else None,
            "latency_p50_s": pct(50),
            "latency_p99_s": pct(99),
            "reused_share": self.reused / len(self.acked) if self.acked else None,
        }
