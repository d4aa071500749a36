"""Which genai-prices snapshot prices calls, how old it is, and fetching a newer one on request.

By default the snapshot bundled in the installed genai-prices wheel prices every call: offline,
reproducible, and only as new as that release. ``costwarden prices update`` (:func:`update`)
downloads genai-prices' published data (with genai-prices' own URL, parsed by genai-prices) into
a file, and from then on that file is the snapshot in force for every process that finds it:
``$COSTWARDEN_PRICES_SNAPSHOT`` if set, else ``~/.cache/costwarden/genai-prices-snapshot.json``.
Nothing is ever fetched unless asked, and a failed fetch changes nothing.

Why a file rather than genai-prices' background updater: the updater would change prices
mid-run without anyone asking, and every process (CLI, gateway, library) must price alike.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from costwarden.errors import ConfigurationError, ProviderError

ENV: Final = "COSTWARDEN_PRICES_SNAPSHOT"
_FORMAT: Final = "costwarden-genai-prices-snapshot/1"
_lock = threading.Lock()
_loaded: dict[str, Any] = {}


def snapshot_path() -> Path:
    """Where a downloaded snapshot is kept (and looked for)."""
    configured = os.environ.get(ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "costwarden" / "genai-prices-snapshot.json"


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What prices calls: ``source`` is "bundled" or "downloaded"."""

    source: str
    genai_prices_version: str
    path: Path | None
    fetched_at: datetime | None
    """When a downloaded snapshot was fetched (None for the bundled one)."""
    installed_at: datetime | None
    """When the bundled snapshot's package was installed."""
    newest_price_date: date | None
    """The latest dated price change the snapshot knows, on or before today: a lower bound on
    the date its data was compiled (the bundled data carries no date of its own)."""
    url: str | None = None

    def age_days(self, now: datetime | None = None) -> int | None:
        """Days since the snapshot was fetched (downloaded) or its newest known price change."""
        now = now or datetime.now(UTC)
        if self.fetched_at is not None:
            return (now - self.fetched_at).days
        if self.newest_price_date is not None:
            return (now.date() - self.newest_price_date).days
        return None

    def describe(self) -> str:
        """One line saying where the prices come from (bundled or downloaded) and how old they are,
        for ``costwarden prices``.
        """
        age = self.age_days()
        aged = "" if age is None else f", {age} days old"
        if self.source == "downloaded":
            assert self.fetched_at is not None
            return (
                f"downloaded genai-prices snapshot {self.path} (fetched "
                f"{self.fetched_at:%Y-%m-%d %H:%M} UTC{aged}; from {self.url})"
            )
        newest = (
            f"; newest dated price change {self.newest_price_date}{aged} by that measure"
            if self.newest_price_date
            else ""
        )
        installed = f", installed {self.installed_at:%Y-%m-%d}" if self.installed_at else ""
        return (
            f"snapshot bundled with genai-prices {self.genai_prices_version}{installed}"
            f"{newest}; `costwarden prices update` fetches a newer one"
        )


def _version() -> str:
    try:
        return metadata.version("genai-prices")
    except metadata.PackageNotFoundError:  # pragma: no cover - it is a dependency
        return "unknown"


def _read(path: Path) -> tuple[dict[str, Any], Any]:
    """(the file's header, genai-prices providers) of a downloaded snapshot file."""
    from genai_prices import types

    try:
        doc = json.loads(path.read_bytes())
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError(f"not a {_FORMAT} file")
        providers = types._providers_from_raw(doc["providers"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(
            f"the genai-prices snapshot {path} cannot be used ({exc}); run `costwarden prices "
            f"update` again, or remove it to use the bundled snapshot"
        ) from None
    return doc, providers


def install_downloaded() -> None:
    """Make a downloaded snapshot, if there is one, genai-prices' snapshot (once per process;
    the genai adapter calls this before its first lookup)."""
    # Keyed by what decides the path (the variable and the home directory), read without
    # building it: every model's first lookup comes here, and Path.home() costs more than the
    # compiling of the price the lookup is for (bench_pricing's first resolve).
    key = (os.environ.get(ENV), os.environ.get("HOME"))
    if _loaded.get("path") == key:
        return
    with _lock:
        if _loaded.get("path") == key:
            return
        path = snapshot_path()
        try:
            if not path.exists():
                _loaded.pop("header", None)
                return
            from genai_prices import data_snapshot

            header, providers = _read(path)
            data_snapshot.set_custom_snapshot(
                data_snapshot.DataSnapshot(providers=providers, from_auto_update=True)
            )
            _loaded["header"] = header
        finally:  # only now: a thread that sees the key must find the snapshot installed
            _loaded["path"] = key


def _newest_price_date(providers: Any, today: date) -> date | None:
    newest: date | None = None
    for provider in providers:
        for model in provider.models:
            constraints = (
                [c.constraint for c in model.prices] if isinstance(model.prices, list) else []
            )
            constraints += [v.constraint for v in model.price_variants or ()]
            for c in constraints:
                start = getattr(c, "start_date", None)
                if (
                    isinstance(start, date)
                    and start <= today
                    and (newest is None or start > newest)
                ):
                    newest = start
    return newest


def info() -> SnapshotInfo:
    """The snapshot in force."""
    from genai_prices import data_snapshot

    install_downloaded()
    header = _loaded.get("header")
    providers = data_snapshot.get_snapshot().providers
    newest = _newest_price_date(providers, datetime.now(UTC).date())
    if header is not None:
        return SnapshotInfo(
            source="downloaded",
            genai_prices_version=_version(),
            path=snapshot_path(),
            fetched_at=datetime.fromisoformat(header["fetched_at"]),
            installed_at=None,
            newest_price_date=newest,
            url=header.get("url"),
        )
    import genai_prices

    data_file = Path(genai_prices.__file__).with_name("data.py")
    try:
        installed = datetime.fromtimestamp(data_file.stat().st_mtime, UTC)
    except OSError:  # pragma: no cover - a zipped install
        installed = None
    return SnapshotInfo(
        source="bundled",
        genai_prices_version=_version(),
        path=None,
        fetched_at=None,
        installed_at=installed,
        newest_price_date=newest,
    )


def update(*, timeout: float = 10.0, url: str | None = None) -> SnapshotInfo:
    """Fetch genai-prices' published data and keep it as the snapshot in force.

    Raises :class:`ProviderError` when it cannot be fetched or read (offline, say); the
    snapshot in force is then left as it was.
    """
    import httpx2
    from genai_prices import types
    from genai_prices.update_prices import DEFAULT_UPDATE_URL

    source = url or DEFAULT_UPDATE_URL
    try:
        response = httpx2.get(source, timeout=httpx2.Timeout(timeout, connect=min(timeout, 5.0)))
        response.raise_for_status()
        raw = json.loads(response.content)
        types._providers_from_raw(raw)  # validates, as genai-prices' own updater does
    except Exception as exc:
        raise ProviderError(
            f"could not fetch a genai-prices snapshot from {source}: "
            f"{type(exc).__name__}: {exc or 'no detail'} (offline? the snapshot in force is "
            "unchanged)"
        ) from None
    path = snapshot_path()
    doc = {
        "format": _FORMAT,
        "fetched_at": datetime.now(UTC).isoformat(),
        "url": source,
        "genai_prices_version": _version(),
        "providers": raw,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(doc))
    partial.replace(path)  # atomic: a reader sees the old file or the new one
    with _lock:
        _loaded.pop("path", None)
    install_downloaded()
    return info()
