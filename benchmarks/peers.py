"""Peers measured side by side with costwarden, each in its own throwaway venv.

A peer (LiteLLM) is never a dependency of costwarden: ``ensure_venv`` makes
``.bench-venv-<name>/`` at the repository root (git-ignored), pip-installs the pinned release
into it once, and ``run_peer`` runs a script from ``benchmarks/peer_scripts/`` with that venv's
Python in a fresh temporary working directory (LiteLLM's BudgetManager writes
``user_cost.json`` into the working directory). The script prints one JSON object as its last
line of output; that object is what ``run_peer`` returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent / "peer_scripts"
LITELLM = "litellm==1.110.2"
# LiteLLM fetches its price map from the network at import unless told to use its bundled copy.
PEER_ENV = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}


class PeerUnavailable(RuntimeError):
    """The peer could not be installed or run; the benchmark prints why and goes on."""


def venv_dir(name: str) -> Path:
    return ROOT / f".bench-venv-{name}"


def _python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(name: str, requirement: str) -> Path:
    """The venv's Python, with ``requirement`` (one or more, space-separated) installed
    (once: a marker file remembers it)."""
    venv = venv_dir(name)
    marker = venv / ".costwarden-bench-installed"
    python = _python(venv)
    if python.exists() and marker.exists() and marker.read_text() == requirement:
        return python
    try:
        if not python.exists():
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)],
                check=True,
                capture_output=True,
                timeout=300,
            )
        print(f"  (installing {requirement} into {venv.name}/, once)", flush=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", *requirement.split()],
            check=True,
            capture_output=True,
            timeout=1200,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        tail = detail.decode(errors="replace").strip().splitlines()[-3:]
        raise PeerUnavailable(f"cannot install {requirement}: {exc} {' | '.join(tail)}") from exc
    marker.write_text(requirement)
    return python


def run_peer(
    script: str,
    args: list[str],
    *,
    venv: str = "litellm",
    requirement: str = LITELLM,
    timeout: float = 1800.0,
) -> dict[str, Any]:
    """Run ``peer_scripts/<script>`` in the peer's venv and return its JSON figures."""
    python = ensure_venv(venv, requirement)
    env = {**os.environ, **PEER_ENV}
    env.pop("PYTHONPATH", None)  # the peer must not see costwarden or our venv's packages
    with tempfile.TemporaryDirectory(prefix=f"cw-peer-{venv}-") as cwd:
        try:
            done = subprocess.run(
                [str(python), str(SCRIPTS / script), *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise PeerUnavailable(f"{script} ran longer than {timeout:g} s") from exc
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    if done.returncode != 0 or not lines:
        err = done.stderr.strip().splitlines()[-5:]
        raise PeerUnavailable(f"{script} failed (exit {done.returncode}): {' | '.join(err)}")
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise PeerUnavailable(f"{script} did not end with a JSON line: {lines[-1]!r}") from exc
    return result


__all__ = ["LITELLM", "PeerUnavailable", "ensure_venv", "run_peer", "venv_dir"]
