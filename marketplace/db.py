"""Engine, sessions and the one way code commits.

One session lives on `g` per app context (a request, a job or a command); `transaction()` is the
only place that commits. Services flush when they need ids and never commit.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Enum,
    MetaData,
    Table,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

MAX_ROW_ID = 2**31 - 1  # ids of INTEGER primary keys; larger ones cannot exist
_ASCII_ID = re.compile(r"[0-9]{1,10}")


def parse_row_id(text: str | None) -> int | None:
    """The row id `text` spells in ASCII digits, or None: `str.isdigit` also admits "²" and
    other Unicode digits that `int()` then refuses, and an id past MAX_ROW_ID cannot exist."""
    if text is None or not _ASCII_ID.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value <= MAX_ROW_ID else None


NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone; we put it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def value_enum(cls: type[enum.Enum], length: int = 20) -> Enum:
    """A string column holding an enum's values (not its names), checked in Python only, so
    adding a member needs no migration."""
    return Enum(
        cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e]
    )


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with our per-dialect settings: SQLite gets WAL, FKs and explicit BEGIN."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, emit BEGIN, so write transactions can be IMMEDIATE.

    `transaction()` asks for BEGIN IMMEDIATE; that takes SQLite's write lock up front, so two
    writers queue on the busy timeout instead of failing when a read lock cannot be upgraded.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        # A 64 MB page cache and memory-mapped reads: search touches many pages per query.
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())


def init_app(app: Flask) -> None:
    engine = make_engine(str(app.config["DATABASE_URL"]))
    app.extensions["marketplace.db"] = Database(
        engine=engine, sessions=sessionmaker(bind=engine, expire_on_commit=False)
    )
    app.teardown_appcontext(_close_session)


def get_database(app: Flask | None = None) -> Database:
    database: Database = (app or current_app).extensions["marketplace.db"]
    return database


def get_engine() -> Engine:
    return get_database().engine


def get_session() -> Session:
    """The app context's session, made on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = get_database().sessions()
    session: Session = g.db_session
    return session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def begin_write(session: Session) -> None:
    """Start the session's next transaction as a writer.

    On SQLite this ends a read-only transaction the request may have started (nothing is
    pending outside `transaction()`) and begins again with BEGIN IMMEDIATE.
    """
    bind = session.get_bind()
    if bind.dialect.name != "sqlite":
        return
    if session.in_transaction():
        session.commit()
        # What was read before may have changed by the time we hold the write lock.
        session.expire_all()
    session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


@contextmanager
def transaction(session: Session | None = None) -> Iterator[Session]:
    """All of the block or none of it; the only place request, job and CLI code commits."""
    session = session if session is not None else get_session()
    begin_write(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        session.info.pop("after_commit", None)
        for undo in reversed(session.info.pop("on_rollback", [])):
            undo()
        raise
    session.info.pop("on_rollback", None)
    for then in session.info.pop("after_commit", []):
        then()


def after_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run `callback` once the surrounding transaction commits (e.g. enqueue a job)."""
    session.info.setdefault("after_commit", []).append(callback)


def on_rollback(session: Session, undo: Callable[[], None]) -> None:
    """Run `undo` if the surrounding transaction rolls back (e.g. delete a stored object)."""
    session.info.setdefault("on_rollback", []).append(undo)


def insert_driver_rows(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """Insert driver-ready rows (values already as the driver takes them) in one round trip.

    PostgreSQL: COPY, several times faster than an executemany of INSERTs; it fires the same
    triggers. SQLite: one executemany of a single prepared INSERT (sqlite3 prepares it once).
    Plain INSERT either way, never REPLACE or an upsert: append-only triggers stay in force.
    The ledger's appends and the bulk ingest both write through here.
    """
    if not rows:
        return
    names = ", ".join(columns)  # our own column names, never input
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        assert raw is not None
        with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    markers = ", ".join(marker for _ in columns)
    connection.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) VALUES ({markers})",  # noqa: S608
        list(rows),
    )


def bulk_insert(connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT many rows through the driver's executemany, converting values once per column.

    For the hot bulk paths (ledger appends, catalog ingest): SQLAlchemy's own executemany
    builds parameters row by row, which costs more than the writes. Every row must give the
    same keys, including columns that have Python-side defaults.
    """
    if not rows:
        return
    dialect = connection.dialect
    keys = list(rows[0])
    processors = [table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys]
    marker = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    # Names come from our own table metadata; values travel as parameters.
    columns = ", ".join(quote(k) for k in keys)
    markers = ", ".join(marker for _ in keys)
    sql = f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({markers})"  # noqa: S608
    converting = [(i, process) for i, process in enumerate(processors) if process is not None]
    converted = []
    for row in rows:
        values = [row[key] for key in keys]
        for i, process in converting:
            if values[i] is not None:
                values[i] = process(values[i])
        converted.append(tuple(values))
    connection.exec_driver_sql(sql, converted)


def reserve_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """`count` fresh primary-key values for `table`, to insert rows with known ids in bulk.

    PostgreSQL draws them from the column's sequence; SQLite continues after the largest id
    (safe because write transactions hold SQLite's write lock).
    """
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        sequence = f"pg_get_serial_sequence('{table.name}', 'id')"
        rows = connection.exec_driver_sql(
            f"SELECT nextval({sequence}) FROM generate_series(1, {int(count)})"  # noqa: S608
        )
        return [int(value) for (value,) in rows]
    latest = f"SELECT coalesce(max(id), 0) FROM {table.name}"  # noqa: S608 - our own table
    start = connection.exec_driver_sql(latest).scalar()
    return list(range(int(start or 0) + 1, int(start or 0) + 1 + count))


def streamed_session(app: Flask | None = None) -> Iterator[Session]:
    """A session of its own for a streamed response body, closed when the stream ends or the
    client goes away (the generator is closed): the request's session is already closed by
    teardown when the server reads the body, and a body reading through it would check out a
    connection that nobody returns."""
    session = get_database(app).sessions()
    try:
        yield session
    finally:
        session.close()
