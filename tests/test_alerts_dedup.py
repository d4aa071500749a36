"""Several processes share one ledger (SQLite file, PostgreSQL) and cross the same thresholds
at once: every threshold must reach the webhook receiver exactly once."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from costwarden.alerts import generate_secret, verify_signature

ROOT = Path(__file__).resolve().parents[1]
SECRET = generate_secret()
PROCESSES = 4
SCOPES = 15  # x 3 thresholds = 45 alerts, each emitted by every process

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from costwarden.alerts import AlertDispatcher, WebhookChannel
    from costwarden.ledger import open_ledger
    from costwarden.records import Alert, AlertLevel

    url, hook, secret, go, run, n = sys.argv[1:7]
    ledger = open_ledger(url)
    d = AlertDispatcher(ledger, [WebhookChannel(hook, secret)], digest_window=0.05,
                        poll_interval=0.2, base_delay=0.1)
    while not os.path.exists(go):
        time.sleep(0.002)
    won = 0
    for i in range(int(n)):
        for t in (0.5, 0.8, 1.0):
            alert = Alert(AlertLevel.WARNING, f"team t{i} at {t:.0%}", f"team:t{i}", "daily",
                          "threshold", t, dedup_key=f"threshold|{run}|team:t{i}|daily|0|{t}")
            won += d.emit(alert)
    d.close(timeout=20)
    ledger.close()
    print(won)
    """
)


@pytest.fixture
def hook() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            ok = verify_signature(SECRET, dict(self.headers.items()), body)
            if ok:
                with lock:
                    bodies.append(body)
            self.send_response(200 if ok else 401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    server.shutdown()
    server.server_close()


def run_processes(url: str, hook: tuple[str, list[bytes]], tmp_path: Path) -> None:
    address, bodies = hook
    go = tmp_path / "go"
    run = uuid.uuid4().hex[:8]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, address, SECRET, str(go), run, str(SCOPES)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    time.sleep(1.0)  # let every process import and open the ledger
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    winners = sum(int(out.strip().splitlines()[-1]) for out, _ in outs)
    expected = {
        f"threshold|{run}|team:t{i}|daily|0|{t}" for i in range(SCOPES) for t in (0.5, 0.8, 1.0)
    }
    assert winners == len(expected)  # each claim won by exactly one process
    received = Counter(a["dedup_key"] for body in bodies for a in json.loads(body)["alerts"])
    assert set(received) == expected
    assert max(received.values()) == 1, [k for k, n in received.items() if n > 1]


def test_one_alert_per_threshold_across_processes_sqlite(
    hook: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    run_processes(f"sqlite:///{tmp_path}/shared.db", hook, tmp_path)


def _postgres_url() -> str:
    url = os.environ.get("COSTWARDEN_TEST_POSTGRES_URL")
    ci = os.environ.get("CI") == "true"
    if url is None and ci:
        url = "postgresql://root@127.0.0.1:5432/test"
    if url is None:
        pytest.skip("set COSTWARDEN_TEST_POSTGRES_URL to run the PostgreSQL dedup test")
    if importlib.util.find_spec("costwarden.ledger.postgres") is None:
        pytest.skip("costwarden.ledger.postgres does not exist yet")
    return url


@pytest.mark.postgres
def test_one_alert_per_threshold_across_processes_postgres(
    hook: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    url = _postgres_url()
    import psycopg

    schema = f"cw_alerts_{uuid.uuid4().hex[:10]}"
    try:
        psycopg.connect(url.split("?")[0], connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at {url} is unreachable: {exc}")
    sep = "&" if "?" in url else "?"
    try:
        run_processes(f"{url}{sep}schema={schema}", hook, tmp_path)
    finally:
        with psycopg.connect(url.split("?")[0], autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
