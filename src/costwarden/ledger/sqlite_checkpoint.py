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

from costwarden import forksafe

log = logging.getLogger("costwarden")

SAFETY_NET_PAGES: Final = 20_000
"""The writer's own ``wal_autocheckpoint``: only reached if the background thread stalls."""


class BackgroundCheckpointer:
    """Checkpoints one database file's WAL a short while after writes arrive.

    Across a fork (see :mod:`costwarden.forksafe`): the connection is only ever used under
    ``_busy``, which the forking thread takes and then closes the connection, so the child
    inherits neither a half-done checkpoint nor an open SQLite file; the parent's thread
    reconnects on its next round, and the child starts its own thread at its first write.
    """

    def __init__(self, path: str, *, delay: float = 0.05, timeout: float = 10.0) -> None:
        self.path = path
        self.delay = delay
        self.timeout = timeout
        self.checkpoints = 0
        self._busy = threading.Lock()  # held around every use of _conn
        self._start_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._fork_hold = forksafe.HeldOverFork()  # _busy across a fork (the fork hooks)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start()
        forksafe.register(self)

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"costwarden-checkpoint:{self.path}", daemon=True
        )
        self._thread.start()

    def note_write(self) -> None:
        """Called after each committed write transaction (cheap when already signalled). The
        first one in a forked child starts the child's thread."""
        if not self._wake.is_set():
            if self._thread is None and not self._stop.is_set():
                with self._start_lock:
                    if self._thread is None:
                        self._start()
            self._wake.set()

    def _connect(self) -> sqlite3.Connection | None:
        try:
            # check_same_thread=False: the thread that forks closes it (see the class doc).
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
        except sqlite3.Error as exc:  # the writer then falls back to its safety net
            log.warning("costwarden: WAL checkpointer for %s could not start: %s", self.path, exc)
            self._stop.set()
            return None
        return conn

    def _run(self) -> None:
        stop, wake = self._stop, self._wake
        try:
            while True:
                wake.wait()
                if stop.is_set():
                    return
                # Let a burst of writes land, then copy them back in one go.
                stop.wait(self.delay)
                wake.clear()
                with self._busy:
                    if stop.is_set():
                        return
                    conn = self._conn = self._conn or self._connect()
                    if conn is None:
                        return
                    try:
                        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        self.checkpoints += 1
                    except sqlite3.Error as exc:
                        log.debug("costwarden: WAL checkpoint of %s skipped: %s", self.path, exc)
        finally:
            with self._busy:
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

    def close(self, timeout: float = 5.0) -> None:
        """Stop the checkpoint thread and wait up to ``timeout`` seconds for it (not when called
        from that thread itself).
        """
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)

    # -- fork hooks (costwarden.forksafe) ---------------------------------------------------------
    def _before_fork(self) -> None:
        if self._fork_hold.take(self._busy, self.timeout) and self._conn is not None:
            self._conn.close()
            self._conn = None

    def _after_fork_in_parent(self) -> None:
        self._fork_hold.release()

    def _after_fork_in_child(self) -> None:
        if self._conn is not None:  # still open: the parent's thread was busy past the wait
            forksafe.set_aside(self._conn)
            self._conn = None
        self._fork_hold.forget()
        self._busy = threading.Lock()
        self._start_lock = threading.Lock()
        stopped = self._stop.is_set()
        self._wake, self._stop = threading.Event(), threading.Event()
        if stopped:
            self._stop.set()
        self._thread = None  # the parent's thread does not exist here; note_write starts one
