"""WAL checkpoints off the caller's path, for the SQLite ledger.

In WAL mode SQLite copies the log back into the database file (a *checkpoint*, which ends in
an fsync) whenever the log passes ``wal_autocheckpoint`` pages, and it does so inside the
COMMIT of whichever caller crossed the line. Bookkeeping wrote about seven pages per tracked
call when this was measured (holds were rows then), so one call in ~140 paid ~10 ms: a tail
that averaged out to a third of the hot path.

Here a daemon thread with its own connection runs PASSIVE checkpoints shortly after writes,
so the log stays short and no caller waits for the fsync. PASSIVE never blocks writers or
readers. The writer keeps a high ``wal_autocheckpoint`` as a safety net in case this thread
cannot keep up.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Final

log = logging.getLogger("costwarden")

SAFETY_NET_PAGES: Final = 20_000
"""The writer's own ``wal_autocheckpoint``: only reached if the background thread stalls."""


class BackgroundCheckpointer:
    """Checkpoints one database file's WAL a short while after writes arrive."""

    def __init__(self, path: str, *, delay: float = 0.05, timeout: float = 10.0) -> None:
        self.path = path
        self.delay = delay
        self.timeout = timeout
        self.checkpoints = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"costwarden-checkpoint:{path}", daemon=True
        )
        self._thread.start()

    def note_write(self) -> None:
        """Called after each committed write transaction (cheap when already signalled)."""
        if not self._wake.is_set():
            self._wake.set()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        except sqlite3.Error as exc:  # the writer then falls back to its safety net
            log.warning("costwarden: WAL checkpointer for %s could not start: %s", self.path, exc)
            return
        try:
            while True:
                self._wake.wait()
                if self._stop.is_set():
                    return
                # Let a burst of writes land, then copy them back in one go.
                self._stop.wait(self.delay)
                self._wake.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                except sqlite3.Error as exc:
                    log.debug("costwarden: WAL checkpoint of %s skipped: %s", self.path, exc)
                if self._stop.is_set():
                    return
        finally:
            conn.close()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
