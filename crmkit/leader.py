"""One active worker per role: a PostgreSQL advisory lock held on its own connection.

The outbox relay and each event consumer of a service run in every worker replica; only the
holder of the role's lock works, the others wait and take over when its connection goes away.
SQLite runs one process per database file in the embedded mode; there the lock is a no-op.
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import Connection, Engine, text

from crmkit.db import is_sqlite

log = logging.getLogger(__name__)


class LeaderLock:
    """An advisory lock named by ``name``; ``acquire`` is cheap to call on every loop."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        self._conn: Connection | None = None

    @classmethod
    def for_engine(cls, engine: Engine, name: str) -> LeaderLock:
        return NoLock(engine, name) if is_sqlite(engine.url) else cls(engine, name)

    def acquire(self) -> bool:
        """True while this process holds the lock (taking it when it is free)."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:  # the connection (and with it the lock) is gone: try again
                self.release()
        conn = self.engine.connect()
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())
        conn.commit()
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self._conn.close()
            except Exception:
                log.debug("releasing lock %s failed", self.name, exc_info=True)
            self._conn = None

    @property
    def held(self) -> bool:
        return self._conn is not None


class NoLock(LeaderLock):
    """SQLite: one process per database file, always the leader."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        return None
