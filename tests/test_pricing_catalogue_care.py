"""Catalogue care: unknown models are KeyErrors too and say where to add a price; the CLI's
tokens command refuses an unknown model; ``prices --source`` names the snapshot in force and
``prices update`` fetches a newer one only when asked, failing clearly when it cannot."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from costwarden.cli.app import app
from costwarden.errors import UnknownModelError
from costwarden.pricing import PriceCatalog


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def test_unknown_model_error_is_a_key_error_with_a_readable_message() -> None:
    with pytest.raises(KeyError) as err:  # what code written for tokencost catches
        PriceCatalog().resolve("gpt-4oo")
    assert isinstance(err.value, UnknownModelError) and isinstance(err.value, LookupError)
    message = str(err.value)
    assert message.startswith("No price is known for model 'gpt-4oo'.")  # not KeyError's repr
    assert "Did you mean: gpt-4o" in message
    assert "[prices] in costwarden.toml" in message and "PriceCatalog(custom=" in message


def test_tokens_refuses_an_unknown_model_and_suggests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("tokens", "gpt-4oo", "hi")
    assert result.exit_code == 1
    assert "No price is known for model 'gpt-4oo'" in result.output
    assert "gpt-4o" in result.output
    ok = cli("tokens", "gpt-4o", "hi", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["tokens"] == 1


def test_prices_source_names_the_bundled_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("prices", "--source", "--json")
    assert result.exit_code == 0, result.output
    source = json.loads(result.stdout)["source"]
    assert source["source"] == "bundled" and source["genai_prices_version"].startswith("0.")
    assert isinstance(source["age_days"], int) and source["age_days"] >= 0
    text = cli("prices", "--source")
    assert "bundled with genai-prices" in text.output and "days old" in text.output


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_prices_update_fails_clearly_when_it_cannot_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "snap.json"
    monkeypatch.setenv("COSTWARDEN_PRICES_SNAPSHOT", str(target))
    url = f"http://127.0.0.1:{_closed_port()}/data.json"
    result = cli("prices", "update", "--url", url, "--timeout", "2")
    assert result.exit_code == 1
    assert "could not fetch a genai-prices snapshot" in result.output
    assert "unchanged" in result.output
    assert not target.exists()


RAW = [
    {
        "id": "acme",
        "name": "Acme",
        "api_pattern": "https://api\\.acme\\.test",
        "model_match": {"contains": "acme"},
        "models": [
            {
                "id": "acme-1",
                "match": {"equals": "acme-1"},
                "prices": {"input_mtok": 1, "output_mtok": 2},
            }
        ],
    }
]


@pytest.fixture
def data_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(RAW).encode() if self.path == "/data.json" else b"[1"
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _costwarden(
    args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    # A child process: the downloaded snapshot becomes genai-prices' global snapshot there.
    code = "import sys; from costwarden.cli.app import app; sys.argv[0] = 'costwarden'; app()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_prices_update_fetches_and_the_snapshot_is_then_in_force(
    tmp_path: Path, data_server: str
) -> None:
    target = tmp_path / "snap.json"
    env = {**os.environ, "COSTWARDEN_PRICES_SNAPSHOT": str(target)}
    bad = _costwarden(["prices", "update", "--url", data_server + "/broken"], env, tmp_path)
    assert bad.returncode == 1 and "could not fetch" in bad.stderr and not target.exists()
    done = _costwarden(["prices", "update", "--url", data_server + "/data.json"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "downloaded genai-prices snapshot" in done.stdout and target.exists()
    shown = _costwarden(["prices", "--source", "--json", "acme-1"], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    out = json.loads(shown.stdout)
    assert out["source"]["source"] == "downloaded" and out["source"]["age_days"] == 0
    assert out["prices"][0]["resolved_as"] == "acme-1"
    assert out["prices"][0]["input_per_1m"] == "1"
    target.write_text("{not json")
    broken = _costwarden(["prices", "gpt-4o"], env, tmp_path)
    assert broken.returncode == 1 and "cannot be used" in broken.stderr
