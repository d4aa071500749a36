"""``make run`` end to end: the demo day, a key, the gateway with the simulated provider, and
the calls it prints working as printed (a real server process on 127.0.0.1)."""

from __future__ import annotations

import importlib.util
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai

from costwarden.manager import BudgetManager


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the showcase exited before serving"
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never became healthy")


def test_make_run_serves_the_gateway_and_the_calls_it_prints_work(tmp_path: Path) -> None:
    port = _free_port()
    ledger = tmp_path / "spend.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "costwarden.showcase",
            "--ledger",
            str(ledger),
            "--port",
            str(port),
            "--quiet",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc)
        assert proc.stdout is not None
        printed = ""
        while "Ctrl-C" not in printed:
            printed += proc.stdout.readline()
        assert f"{base}/dashboard/" in printed
        secret = re.search(r"Bearer (cw-[A-Za-z0-9_-]+)", printed)
        assert secret is not None, printed
        # the curl as printed, made with urllib
        request = urllib.request.Request(
            base + "/v1/chat/completions",
            data=json.dumps(
                {
                    "model": "gpt-4o-mini",
                    "max_tokens": 40,
                    "messages": [{"role": "user", "content": "Say hello"}],
                }
            ).encode(),
            headers={"Authorization": f"Bearer {secret[1]}", "content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            assert json.loads(r.read())["choices"][0]["message"]["content"]
        # the openai SDK call as printed
        with openai.OpenAI(base_url=base + "/v1", api_key=secret[1]) as client:
            reply = client.chat.completions.create(
                model="gpt-4o-mini",
                max_tokens=40,
                messages=[{"role": "user", "content": "Say hello"}],
            )
        assert reply.choices[0].message.content
        if importlib.util.find_spec("costwarden.dashboard") is not None:
            with urllib.request.urlopen(base + "/dashboard/", timeout=30) as r:
                assert r.status == 200 and b"<html" in r.read().lower()
    finally:
        proc.send_signal(signal.SIGINT)
        try:  # communicate, not wait: it reads the pipes to the end and closes them
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate(timeout=10)
    with BudgetManager(ledger=f"sqlite:///{ledger}") as manager:
        records = manager.records()
        now_us = time.time() * 1e6
        assert records and all(r.ts_us <= now_us for r in records)  # nothing in the future
        assert sum(r.user_id == "alice" and r.model == "gpt-4o-mini" for r in records) >= 2
