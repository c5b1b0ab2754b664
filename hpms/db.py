"""Engines, sessions and schema state for SQLite (WAL) and PostgreSQL.

SQLite writers are serialized with BEGIN IMMEDIATE (the SQLAlchemy recipe for pysqlite) so
that a check-then-insert inside one transaction cannot race another process.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from hpms.config import Settings, redact_url
from hpms.errors import Action, DatabaseUnavailable, NotInitializedError, SchemaMismatch, UsageError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
BUSY_TIMEOUT_MS = 10_000
# What a database without the hpms schema (or no database at all) needs first.
INIT = Action("init", purpose="first run")


class UTCDateTime(sa.types.TypeDecorator):
    """Timezone-aware UTC datetimes on both backends (SQLite stores naive UTC text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where an aware UTC datetime is required")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


@functools.cache
def _shipped_revisions() -> tuple[str, ...]:
    # the files ship with the code: listed once per process (every command checks the schema)
    return tuple(
        sorted(
            p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("*.py") if re.match(r"\d{4}_", p.name)
        )
    )


def known_revisions() -> list[str]:
    """Revision ids shipped with this code, oldest first (file names start with the id)."""
    return list(_shipped_revisions())


def head_revision() -> str:
    return known_revisions()[-1]


_engines: dict[str, Engine] = {}


def _sqlite_listeners(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every test
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN below be the only one
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        sql = "BEGIN" if conn.get_execution_options().get("hpms_readonly") else "BEGIN IMMEDIATE"
        # on the driver: every transaction starts here, and the statement machinery costs more
        # than the BEGIN itself; a busy database is raised as SQLAlchemy raises it
        import sqlite3

        try:
            conn.connection.driver_connection.execute(sql)
        except sqlite3.Error as exc:
            raise sa.exc.DBAPIError.instance(sql, (), exc, sqlite3.Error) from exc


SUPPORTED_URLS = ("sqlite:///", "sqlite+pysqlite:///", "postgresql+psycopg://")


def make_engine(url: str) -> Engine:
    """A new engine for `url` with the hpms connection settings. UsageError for a URL of a
    database hpms does not run on."""
    if not url.startswith(SUPPORTED_URLS):
        raise UsageError(
            f"the database URL {redact_url(url)!r} is not supported",
            hint="use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:5432/DB",
        )
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        _sqlite_listeners(engine)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    return engine


def get_engine(settings: Settings) -> Engine:
    """The cached engine of these settings; refuses a SQLite file that does not exist yet."""
    url = settings.database_url
    path = settings.sqlite_path
    if path is not None and not path.exists():
        raise NotInitializedError(f"no database at {path}", action=INIT)
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def dispose_engines() -> None:
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()


def connect_error(url: str, exc: Exception) -> DatabaseUnavailable:
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else type(exc).__name__
    return DatabaseUnavailable(f"cannot connect to database {redact_url(url)}: {reason}")


def current_revision(conn: sa.Connection) -> str | None:
    """The schema revision, None for a database without the hpms schema."""
    # Asking the catalog directly is cheaper than building an Inspector on every command.
    if conn.dialect.name == "sqlite":
        found = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).first()
    else:
        found = conn.exec_driver_sql("SELECT to_regclass('alembic_version')").scalar()
    if not found:
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _revision_in(session: Session) -> str | None:
    """The revision read in the session's transaction with one statement on the driver (every
    command checks it). Without the table the catalog decides: in the same transaction on
    SQLite, on a connection of its own (None) on PostgreSQL, where a failed statement ends the
    transaction."""
    conn = session.connection()
    try:
        rows = _VERSION.rows(conn)
    except (sa.exc.ProgrammingError, sa.exc.OperationalError) as exc:
        if "alembic_version" not in str(exc.orig):
            raise
        return current_revision(conn) if conn.dialect.name == "sqlite" else None
    return rows[0].version_num if rows else current_revision(conn)


def check_schema(engine: Engine, session: Session | None = None) -> str:
    """Refuse a database that is not initialized, older or newer than this code; read in the
    transaction of `session` when given (no connection and transaction of its own)."""
    try:
        if session is not None:
            rev = _revision_in(session)
            if rev is None and engine.dialect.name != "sqlite":
                with engine.connect() as conn:
                    rev = current_revision(conn)
        else:
            with engine.connect() as conn:
                rev = current_revision(conn)
    except sa.exc.OperationalError as exc:
        raise connect_error(str(engine.url), exc) from None
    return _judge(engine, rev)


def check_schema_with(engine: Engine, session: Session, stmt: Prepared, params: Mapping[str, Any]) -> list[Any]:
    """`check_schema` in the transaction of `session` and, in the same statement, the rows of
    `stmt`: a select from alembic_version (its first column, version_num) outer-joined to what
    the caller reads next (the acting user). When the statement fails or finds no revision,
    `check_schema` decides, so that a database without the schema, or an older or newer one,
    is refused as it always is."""
    try:
        conn = session.connection()
    except sa.exc.OperationalError as exc:
        raise connect_error(str(engine.url), exc) from None
    try:
        rows = stmt.rows(conn, params)
    except sa.exc.DBAPIError:
        # PostgreSQL ended the transaction with the failed statement: a connection of its own
        check_schema(engine, session if engine.dialect.name == "sqlite" else None)
        raise
    if not rows or rows[0].version_num is None:
        check_schema(engine, session)
        return []
    _judge(engine, rows[0].version_num)
    return rows


def _judge(engine: Engine, rev: str | None) -> str:
    head = head_revision()
    if rev is None:
        raise NotInitializedError(
            f"database {redact_url(engine.url.render_as_string(hide_password=True))} has no hpms schema",
            action=INIT,
        )
    if rev == head:
        return rev
    if rev in known_revisions():
        raise SchemaMismatch(
            f"database schema {rev} is older than this hpms ({head})", action=Action("db", "upgrade", purpose="run")
        )
    raise SchemaMismatch(
        f"database schema {rev} is newer than this hpms knows (head {head})",
        hint="upgrade hpms before using this database",
    )


def _alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Upgrade the schema; returns (before, after). Refuses a schema newer than the code."""
    from alembic import command

    try:
        with engine.connect() as conn:
            before = current_revision(conn)
    except sa.exc.OperationalError as exc:
        raise connect_error(str(engine.url), exc) from None
    if before is not None and before not in known_revisions():
        raise SchemaMismatch(
            f"database schema {before} is newer than this hpms knows (head {head_revision()})",
            hint="upgrade hpms before using this database",
        )
    command.upgrade(_alembic_config(engine), revision)
    return before, head_revision() if revision == "head" else revision


def bulk_insert(session, table: sa.Table, rows: list[dict]) -> None:
    """Insert rows (all with the same keys) through one DBAPI executemany, converting each value
    with its column type's bind processor. For bulk paths (imports, audit batches): it skips
    SQLAlchemy's per-row statement machinery, which costs more than the insert itself."""
    if not rows:
        return
    cols = list(rows[0])
    insert_rows(session, table, cols, [[r[c] for c in cols] for r in rows])


def insert_rows(session, table: sa.Table, columns: list[str], rows: list[list]) -> None:
    """`bulk_insert` for rows given as lists of values in `columns` order (converted in place):
    for callers that build the values column by column, without a dict per row."""
    if not rows:
        return
    conn = session.connection()
    dialect = conn.dialect
    # sqlite3 stores a Python bool as the integer SQLAlchemy would write: no processing needed.
    native = (sa.Boolean,) if dialect.name == "sqlite" else ()
    for i, c in enumerate(columns):
        type_ = table.c[c].type
        proc = None if isinstance(type_, native) else type_._cached_bind_processor(dialect)
        if proc is None:
            continue
        seen, converted = object(), None  # a batch repeats values (timestamps): convert each run once
        for values in rows:
            value = values[i]
            if value is None:
                continue
            if value is not seen:
                seen, converted = value, proc(value)
            values[i] = converted
    if dialect.name == "postgresql":
        # COPY: one stream instead of a statement per row (measured 5x faster than executemany).
        with conn.connection.driver_connection.cursor() as cur:
            with cur.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        return
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    conn.exec_driver_sql(sql, list(map(tuple, rows)))


class Prepared:
    """A Core statement compiled once per dialect and run on the DBAPI cursor of a connection,
    for the few statements every command or booking runs (authentication, the schema check, a
    booking's lookups, guard and insert): SQLAlchemy's per-execution machinery costs several
    times what SQLite takes to answer them. Parameters and results go through the column types
    as SQLAlchemy would; constant IN lists are rendered inline; a driver error is raised as
    SQLAlchemy raises it (an IntegrityError stays one). Rows are named tuples."""

    def __init__(self, stmt: sa.Executable) -> None:
        self.stmt = stmt
        self._by_dialect: dict[str, _Plan] = {}

    def _plan(self, dialect: sa.Dialect) -> _Plan:
        plan = self._by_dialect.get(dialect.name)
        if plan is None:
            plan = self._by_dialect[dialect.name] = _Plan(self.stmt, dialect)
        return plan

    def rows(self, conn: sa.Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The rows of the statement (none for a statement without RETURNING)."""
        return self.start(conn, params)()

    def start(self, conn: sa.Connection, params: Mapping[str, Any] | None = None) -> Callable[[], list[Any]]:
        """Send the statement; returns the function that waits for its rows (those of `rows`).
        Inside `commit_pipelined` the statements sent before the rows are asked for go to the
        server together."""
        plan = self._plan(conn.dialect)
        args = plan.args(params or {})
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if (conn._has_events or conn.engine._has_events) and conn.dispatch.before_cursor_execute:
                _announce(conn, cur, plan.sql, args)
            cur.execute(plan.sql, args)
        except plan.dbapi_error as exc:
            cur.close()
            raise sa.exc.DBAPIError.instance(plan.sql, args, exc, plan.dbapi_error) from exc
        except BaseException:
            cur.close()
            raise
        return functools.partial(self._fetch, plan, cur, args)

    @staticmethod
    def _fetch(plan: _Plan, cur: Any, args: Any) -> list[Any]:
        try:
            if plan.row is None:
                return []
            fetched = cur.fetchall()
        except plan.dbapi_error as exc:
            raise sa.exc.DBAPIError.instance(plan.sql, args, exc, plan.dbapi_error) from exc
        finally:
            cur.close()
        procs, row = plan.result_procs, plan.row
        if not any(procs):
            return [row._make(r) for r in fetched]
        return [row._make([v if p is None or v is None else p(v) for p, v in zip(procs, r)]) for r in fetched]

    def stream(
        self, conn: sa.Connection, params: Mapping[str, Any] | None = None, size: int = 10_000
    ) -> Iterator[list]:
        """The rows as the driver gives them (no result processing), in lists of up to `size`:
        for exports of millions of rows. PostgreSQL sends them from a server-side cursor."""
        plan = self._plan(conn.dialect)
        args = plan.args(params or {})
        driver: Any = conn.connection.driver_connection
        cur = driver.cursor(name="hpms_stream") if conn.dialect.name == "postgresql" else driver.cursor()
        try:
            if (conn._has_events or conn.engine._has_events) and conn.dispatch.before_cursor_execute:
                _announce(conn, cur, plan.sql, args)
            cur.execute(plan.sql, args)
            while part := cur.fetchmany(size):
                yield part
        except plan.dbapi_error as exc:
            raise sa.exc.DBAPIError.instance(plan.sql, args, exc, plan.dbapi_error) from exc
        finally:
            cur.close()


def _announce(conn: sa.Connection, cursor: Any, sql: str, args: Any) -> None:
    """Tell the engine's `before_cursor_execute` listeners about a statement run on the raw
    cursor, as SQLAlchemy would (statement logs and counters then see every statement)."""
    for listener in conn.dispatch.before_cursor_execute:
        listener(conn, cursor, sql, args, None, False)


class _Plan:
    """The driver SQL of a Prepared statement on one dialect, its parameter order and the
    processors of its parameters and result columns."""

    def __init__(self, stmt: sa.Executable, dialect: sa.Dialect) -> None:
        comp: Any = stmt.compile(dialect=dialect)
        sql: str = comp.string
        constants: dict[str, Any] = {}
        expanded: set[str] = set()
        for name, bind in comp.binds.items():
            if name.startswith("%("):  # SQLAlchemy's internal alias of the same parameter
                continue
            if bind.expanding:
                if bind.required or bind.callable is not None:
                    raise ValueError(f"Prepared: the IN list {name!r} must be a constant")
                literal = ", ".join(comp.render_literal_value(v, bind.type) for v in bind.value)
                sql = sql.replace(f"__[POSTCOMPILE_{name}]", literal)
                expanded.add(name)
            elif not bind.required:
                constants[name] = bind.value
        self.sql = sql
        self.positional = bool(dialect.positional)
        if self.positional:
            self.names = [n for n in comp.positiontup if n not in expanded]
        else:
            self.names = list(dict.fromkeys(re.findall(r"%\((\w+)\)s", sql)))
        self.constants = constants
        procs = comp._bind_processors
        self.bind_procs: dict[str, Callable[[Any], Any]] = {n: procs[n] for n in self.names if n in procs}
        self.dbapi_error = dialect.loaded_dbapi.Error
        columns = comp._result_columns if getattr(comp, "_result_columns", None) else []
        self.row: Any = namedtuple("Row", [c.keyname for c in columns], rename=True) if columns else None  # noqa: PYI024
        self.result_procs = [c.type._cached_result_processor(dialect, None) for c in columns]

    def args(self, params: Mapping[str, Any]) -> Any:
        procs = self.bind_procs
        values = []
        for name in self.names:
            v = params[name] if name in params else self.constants[name]
            if v is not None and name in procs:
                v = procs[name](v)
            values.append(v)
        return tuple(values) if self.positional else dict(zip(self.names, values))


_VERSION = Prepared(sa.select(sa.column("version_num")).select_from(sa.table("alembic_version")))


class HpmsSession(Session):
    """A session that hands out the connection of its current transaction without going
    through the transaction machinery again: the hot paths (authentication, a booking's
    lookups, guard, insert and audit) ask for it about ten times per transaction (measured
    1.7 us an ask through the machinery, 0.5 us held). A new transaction (after a commit, a
    rollback, or inside a savepoint) asks afresh."""

    _held: tuple[Any, sa.Connection] | None = None

    def connection(self, bind_arguments: Any = None, execution_options: Any = None) -> sa.Connection:
        if bind_arguments is None and execution_options is None:
            held, trans = self._held, self._transaction
            if held is not None and held[0] is trans and trans is not None and trans.is_active:
                return held[1]
            conn = super().connection()
            self._held = (self._transaction, conn)
            return conn
        return super().connection(bind_arguments, execution_options)


@contextmanager
def session_scope(
    engine: Engine, *, readonly: bool = False, connection: sa.Connection | None = None
) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception. On `connection` (of
    `engine`), held by the caller across transactions, when given: a connection taken from the
    pool costs a round trip (pool_pre_ping) on PostgreSQL."""
    bind: Engine | sa.Connection = engine.execution_options(hpms_readonly=True) if readonly else engine
    if connection is not None:
        bind = connection.execution_options(hpms_readonly=True) if readonly else connection
    try:
        session = HpmsSession(bind, expire_on_commit=False)
    except sa.exc.OperationalError as exc:  # pragma: no cover
        raise connect_error(str(engine.url), exc) from None
    try:
        yield session
        session.commit()
    except sa.exc.OperationalError as exc:
        session.rollback()
        if "could not connect" in str(exc) or "Connection refused" in str(exc):
            raise connect_error(str(engine.url), exc) from None
        raise
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def commit_pipelined(session: Session) -> Iterator[None]:
    """Run the block and commit the session's transaction; should the block or the commit
    raise, the transaction is rolled back. On PostgreSQL the block runs in pipeline mode, the
    COMMIT (and the BEGIN, when the transaction has sent nothing yet) sent with its
    statements: a statement is not waited for until its result is asked for, so a block that
    asks for one result costs two round trips with the commit, not one per statement. Only
    statements run on the driver cursor (Prepared.start, the audit appends) belong in the
    block: SQLAlchemy's own results read the cursor before pipeline mode has the answer. On
    SQLite the statements run as they come. Either way the commit has held (or raised) when
    the block is left."""
    session.flush()
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        try:
            yield
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return
    from psycopg.pq import TransactionStatus

    driver: Any = conn.connection.driver_connection
    dbapi_error = conn.dialect.loaded_dbapi.Error
    # The driver would sync its own BEGIN alone, one round trip more: in autocommit it sends
    # none, and ours goes with the block's statements.
    begin = driver.info.transaction_status == TransactionStatus.IDLE
    cur = driver.cursor()
    if begin:
        driver.autocommit = True
    done = False
    try:
        with driver.pipeline():
            if begin:
                cur.execute("BEGIN")
            yield
            cur.execute("COMMIT")  # leaving the block syncs: it waits for every result
        done = True
    except dbapi_error as exc:
        raise sa.exc.DBAPIError.instance("COMMIT", None, exc, dbapi_error) from exc
    finally:
        cur.close()
        try:
            if not done:
                session.rollback()  # in autocommit too: the driver sends the ROLLBACK
            if begin and driver.info.transaction_status == TransactionStatus.IDLE:
                driver.autocommit = False
        except (dbapi_error, sa.exc.SQLAlchemyError):
            pass  # a lost connection: SQLAlchemy finds it on its next use
    session.commit()  # over on the server already; this ends it for SQLAlchemy


def new_ids(session, table: sa.Table, count: int) -> list[int]:
    """Primary keys for `count` rows about to be inserted in bulk (so no read-back is needed):
    from the id sequence on PostgreSQL; on SQLite past the largest id, which is safe because
    the transaction holds the write lock (BEGIN IMMEDIATE)."""
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "postgresql":
        return list(
            session.execute(
                sa.text(f"SELECT nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, :n)"),
                {"n": count},
            ).scalars()
        )
    top = session.execute(sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0))).scalar_one()
    return list(range(top + 1, top + 1 + count))
