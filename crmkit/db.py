"""Database engine, sessions and the suite's own tables in every service database.

Each service owns one database. Its SQLAlchemy ``MetaData`` gets the kit tables (outbox, inbox,
dead letters, relay state) beside the service's own, so that a state change, the events it
causes and the consumed event that caused it commit in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    Numeric,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC time is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """CNY with two places, exact on every backend.

    PostgreSQL keeps ``NUMERIC(18, 2)``. SQLite has no exact decimal (its NUMERIC is a float, so
    9,999,999,999,999,999.99 came back as 10,000,000,000,000,000.00): there the amount is stored
    as integer fen (cents), and sums stay exact.
    """

    impl = Numeric(18, 2)
    cache_ok = True
    _CENT = Decimal("0.01")

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(18, 2))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        exact = Decimal(value).quantize(self._CENT)
        if dialect.name == "sqlite":
            return int(exact.scaleb(2))
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-2).quantize(self._CENT)
        return Decimal(value).quantize(self._CENT)


def new_metadata() -> MetaData:
    """A MetaData with the suite's constraint naming convention (stable migration names)."""
    return MetaData(naming_convention=NAMING_CONVENTION)


# BigInteger autoincrement is only honoured by SQLite for INTEGER PRIMARY KEY.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True)
class KitTables:
    """The kit's tables inside one service database."""

    outbox: Table
    inbox: Table
    dead_letters: Table
    relay_state: Table
    consumer_offsets: Table

    @classmethod
    def define(cls, metadata: MetaData) -> KitTables:
        """Declare the kit tables on a service's metadata (version 1 of their layout)."""
        outbox = Table(
            "outbox",
            metadata,
            Column("seq", BigIntId, primary_key=True, autoincrement=True),
            Column("event_id", String(36), nullable=False, unique=True),
            Column("topic", String(200), nullable=False),
            Column("key", String(200), nullable=True),
            Column("event_type", String(200), nullable=False),
            # The envelope as the JSON text that is sent: serialised once, when recorded.
            Column("envelope", Text, nullable=False),
            Column("created_at", UtcDateTime, nullable=False),
            Column("published_at", UtcDateTime, nullable=True),
            Column("attempts", Integer, nullable=False, default=0),
            Column("last_error", Text, nullable=True),
        )
        Index("ix_outbox_unpublished", outbox.c.published_at, outbox.c.seq)
        inbox = Table(
            "inbox",
            metadata,
            Column("consumer", String(100), primary_key=True),
            Column("event_id", String(36), primary_key=True),
            Column("event_type", String(200), nullable=False),
            Column("processed_at", UtcDateTime, nullable=False),
            Column("outcome", String(20), nullable=False),
        )
        dead_letters = Table(
            "dead_letters",
            metadata,
            Column("id", BigIntId, primary_key=True, autoincrement=True),
            Column("consumer", String(100), nullable=False),
            Column("event_id", String(36), nullable=True),
            Column("event_type", String(200), nullable=True),
            Column("topic", String(200), nullable=False),
            Column("partition", Integer, nullable=False),
            Column("offset", BigInteger, nullable=False),
            Column("payload", Text, nullable=False),
            Column("reason", Text, nullable=False),
            Column("attempts", Integer, nullable=False),
            Column("created_at", UtcDateTime, nullable=False),
            Column("replayed_at", UtcDateTime, nullable=True),
            Column("replay_outcome", Text, nullable=True),
            UniqueConstraint("consumer", "event_id", name="uq_dead_letters_consumer_event"),
        )
        relay_state = Table(
            "relay_state",
            metadata,
            Column("topic", String(200), primary_key=True),
            Column("topic_id", String(64), nullable=False),
            Column("updated_at", UtcDateTime, nullable=False),
        )
        # Where each consumer stands in each partition, written in the transaction of the
        # effects; the topic id tells a recreated topic (broker back empty) from the old one.
        consumer_offsets = Table(
            "consumer_offsets",
            metadata,
            Column("consumer", String(100), primary_key=True),
            Column("topic", String(200), primary_key=True),
            Column("partition", Integer, primary_key=True),
            Column("topic_id", String(64), nullable=False),
            Column("next_offset", BigInteger, nullable=False),
            Column("updated_at", UtcDateTime, nullable=False),
        )
        return cls(outbox, inbox, dead_letters, relay_state, consumer_offsets)


class ServiceBase(DeclarativeBase):
    """Declarative base with no metadata of its own: each service subclasses it with its own."""

    __abstract__ = True


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """An engine tuned for the backend: WAL and a busy timeout on SQLite, pre-ping on PostgreSQL."""
    if is_sqlite(url):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            # LIKE is case-sensitive on PostgreSQL; org-unit prefixes must match the same way here.
            cur.execute("PRAGMA case_sensitive_like=ON")
            cur.close()

        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=pool_size, max_overflow=20)


def in_subtree(column: Any, org_unit: str) -> ColumnElement[bool]:
    """``column`` (an org-unit path) is ``org_unit`` or lies below it: a prefix of whole path
    segments (a path may hold "_", a LIKE wildcard, so the prefix is escaped). The root ("/" or
    "") holds every unit."""
    unit = org_unit.rstrip("/")
    if not unit:
        return cast("ColumnElement[bool]", column.is_not(None))
    return cast(
        "ColumnElement[bool]",
        (column == unit) | column.startswith(unit + "/", autoescape=True),
    )


def one_of(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """``column IN values`` for a long list: on PostgreSQL one array parameter (``= ANY``), which
    the driver sends as it is, where an ``IN`` list costs a parameter per value to convert."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return cast("ColumnElement[bool]", column == any_(array))
    return cast("ColumnElement[bool]", column.in_(list(values)))


def count_rows(session: Session, query: Select[Any]) -> int:
    """How many rows ``query`` selects (before its page is cut): the ``total`` of a list."""
    return int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())


def make_session_factory(
    engine: Engine, info: dict[str, Any] | None = None
) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (the response is built from them).

    ``info`` lands in every session's ``info``: the runtime puts its event recorder there, so
    work that runs in an event handler's session records events as an API request's does."""
    return sessionmaker(engine, expire_on_commit=False, info=info)
