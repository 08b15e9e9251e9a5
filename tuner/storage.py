"""Study storage: any SQLAlchemy URL. SQLite in ``studies/db/`` by default (one process);
PostgreSQL for several workers, with heartbeats so that a dead worker's trial is retried."""

from __future__ import annotations

import os
import random
import re
import time
import warnings
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from .errors import StorageError
from .spec import studies_dir

__all__ = ["default_url", "resolve_url", "check_url", "open_storage", "mask_url", "scrub",
           "is_sqlite", "heartbeat_settings",
           "STORAGE_ENV", "HEARTBEAT_INTERVAL", "GRACE_PERIOD", "MAX_RETRY"]

STORAGE_ENV = "TUNER_STORAGE"
HEARTBEAT_INTERVAL = 10   # seconds between a running trial's heartbeats ($TUNER_HEARTBEAT_INTERVAL)
GRACE_PERIOD = 30         # a trial silent this long is failed and retried ($TUNER_GRACE_PERIOD)
MAX_RETRY = 3             # times one trial is re-run after its worker died


def heartbeat_settings() -> tuple[int, int]:
    """``(heartbeat_interval, grace_period)`` in seconds, from the environment or the defaults."""
    values = []
    for name, default in (("TUNER_HEARTBEAT_INTERVAL", HEARTBEAT_INTERVAL),
                          ("TUNER_GRACE_PERIOD", GRACE_PERIOD)):
        raw = os.environ.get(name)
        try:
            value = default if raw in (None, "") else int(raw)
        except ValueError:
            value = 0
        if value <= 0:
            raise StorageError(f"${name} must be a whole number of seconds > 0, got {raw!r}.")
        values.append(value)
    interval, grace = values
    if grace <= interval:
        raise StorageError(f"$TUNER_GRACE_PERIOD ({grace} s) must exceed "
                           f"$TUNER_HEARTBEAT_INTERVAL ({interval} s), or live trials are failed.")
    return interval, grace


def default_url() -> str:
    """``sqlite:///<studies>/db/tuner.sqlite3``."""
    return f"sqlite:///{studies_dir() / 'db' / 'tuner.sqlite3'}"


def resolve_url(url: str | None) -> str:
    """The URL given, else ``$TUNER_STORAGE``, else :func:`default_url`."""
    return url or os.environ.get(STORAGE_ENV) or default_url()


_SECRET_KEY = re.compile(r"pass(word|wd)?|pwd|secret|token|api_?key", re.IGNORECASE)
"""Query-string keys whose value is a secret (``?password=...``, which psycopg2 accepts,
``sslpassword``, ``access_token``, ...): masked like the password of ``user:password@``."""

_HIDDEN = "***"


def _mask_text(url: str) -> str:
    """``url`` with every secret masked, read as text (also for a URL SQLAlchemy cannot parse).

    Everything between the first ``:`` after ``scheme://`` and the last ``@`` before the query is
    the password (masking too much is safe, too little is not), and so is the value of every query
    key named like a secret."""
    head, sep, rest = url.partition("://")
    if not sep:
        head, rest = "", url
    query = rest.find("?")
    at = rest.rfind("@", 0, query if query >= 0 else len(rest))
    at = at if at >= 0 else rest.rfind("@")  # a "?" inside the password
    if at >= 0 and ":" in rest[:at]:
        colon = rest.index(":")
        rest = f"{rest[:colon + 1]}{_HIDDEN}{rest[at:]}"
    rest = re.sub(r"([?&;]\s*([^=&;#]*)\s*=)([^&;#]*)",
                  lambda m: m.group(1) + (_HIDDEN if _SECRET_KEY.search(m.group(2)) else m.group(3)),
                  rest)
    return f"{head}{sep}{rest}"


def _secrets(url: str) -> list[str]:
    """The secret values a URL carries (its password, secret query values), longest first."""
    try:
        parsed = _parse(url)
    except StorageError:
        return []
    found = [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if _SECRET_KEY.search(key):
            found += [value] if isinstance(value, str) else list(value)
    return sorted({str(v) for v in found if v}, key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (e.g. a database driver's error) with every secret of ``url`` replaced by ***."""
    for secret in _secrets(url):
        text = text.replace(secret, _HIDDEN)
    return text


def _parse(url: str):
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not isinstance(url, str) or not url.strip():
        raise StorageError(f"the storage URL must be a non-empty string, got {url!r}; expected "
                           "e.g. sqlite:///path.db or postgresql+psycopg2://user:password@host:5432/db.")
    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a port that is not a number fails here, not later
    except (ArgumentError, ValueError, TypeError):
        raise StorageError(f"malformed storage URL {_mask_text(url)!r}; expected e.g. "
                           "sqlite:///path.db or postgresql+psycopg2://user:password@host:5432/db."
                           ) from None
    return parsed


def check_url(url: str) -> None:
    """Raise :class:`StorageError` when ``url`` is not a well-formed SQLAlchemy URL (the message
    shows the URL with its secrets masked)."""
    _parse(url)


def mask_url(url: str) -> str:
    """The URL with every secret hidden, safe to print and to store in provenance: the password of
    ``user:password@`` and the value of each query key named like a secret (``?password=``,
    ``sslpassword``, ``token``, ...). A URL that does not parse is masked as text."""
    try:
        parsed = _parse(url)
    except StorageError:
        return _mask_text(url) if isinstance(url, str) else "<not a URL>"
    query = {key: (_HIDDEN if _SECRET_KEY.search(key) else value)
             for key, value in parsed.query.items()}
    shown = parsed.set(query=query).render_as_string(hide_password=True)
    # as text once more: a password holding an unescaped "@" parses as part of the host
    return _mask_text(shown.replace("%2A%2A%2A", _HIDDEN))


def is_sqlite(url: str) -> bool:
    return _parse(url).get_backend_name() == "sqlite"


SQLITE_BUSY_TIMEOUT = 60  # seconds a SQLite writer waits for another process's lock
_SCHEMA_RACES = ("already exists", "duplicate key", "unique constraint failed",
                 "database is locked", "pg_type_typname_nsp_index")
"""What a process sees when another one creates the same fresh database at the same moment."""


def _create(url: str, engine_kwargs: dict, interval: int, grace: int,
            attempts: int = 8) -> RDBStorage:
    """The RDB storage; on a fresh database that several workers create at the same instant,
    the losers of the schema-creation race retry (the winner's tables then exist)."""
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=interval,
                    grace_period=grace,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRY))
        except Exception as err:  # sqlalchemy's IntegrityError / OperationalError / ProgrammingError
            text = f"{err} {err.__cause__ or ''}".lower()
            if attempt + 1 == attempts or not any(race in text for race in _SCHEMA_RACES):
                raise
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
    raise AssertionError("unreachable")


def _serialise_sqlite(storage: RDBStorage) -> RDBStorage:
    """Make every SQLite transaction of ``storage`` take the write lock when it begins
    (``BEGIN IMMEDIATE``), so that a read-then-write is atomic across processes.

    Optuna pops a queued (WAITING) trial by reading its state and setting it RUNNING in one
    transaction, relying on a row lock (``SELECT ... FOR UPDATE``) that SQLite does not have: with
    its default deferred transactions two workers both read WAITING and both run the trial (four
    processes asking for 40 queued trials got 28 distinct ones), and the slower one fails at the
    end with "Cannot tell a COMPLETE trial". The same recipe as SQLAlchemy's documentation for
    pysqlite: the driver's own BEGIN is switched off and SQLAlchemy emits ours."""
    from sqlalchemy import event

    engine = storage.engine

    @event.listens_for(engine, "connect")
    def _no_driver_begin(dbapi_connection, record) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners are replaced by new ones
    return storage


def _sqlite_file(parsed) -> Path | None:
    """The file a SQLite URL names: ``sqlite:///path.db``, or a SQLite URI filename
    (``sqlite:///file:path.db?mode=ro&uri=true``, whose path follows ``file:``); None in memory."""
    database = parsed.database
    if not database or database == ":memory:":
        return None
    if str(parsed.query.get("uri", "")).lower() in ("true", "1") and database.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        path = unquote(urlsplit(database).path)
        return Path(path) if path and path != ":memory:" else None
    return Path(database)


def open_storage(url: str | None = None, *, create: bool = True) -> RDBStorage:
    """An Optuna RDB storage for ``url`` with heartbeats (retrying stale trials) and, for
    PostgreSQL, ``pool_pre_ping``. Raises :class:`StorageError` with one line on failure."""
    url = resolve_url(url)
    parsed = _parse(url)
    engine_kwargs = {}
    sqlite = parsed.get_backend_name() == "sqlite"
    database = _sqlite_file(parsed) if sqlite else None  # None: in memory, or another backend
    if sqlite:
        # several processes on one file (workers started together): wait for the lock, not fail
        engine_kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT}
        if database is not None:
            folder = database.parent
            if not folder.exists():
                if not create or parsed.query.get("mode") == "ro":
                    raise StorageError(f"no study database at {database}; run "
                                       "`tuner optimize` first or pass --storage.")
                folder.mkdir(parents=True, exist_ok=True)
            elif not create and not database.exists():
                raise StorageError(f"no study database at {database}; run "
                                   "`tuner optimize` first or pass --storage.")
    else:
        engine_kwargs["pool_pre_ping"] = True
    interval, grace = heartbeat_settings()
    try:
        storage = _create(url, engine_kwargs, interval, grace)
        return _serialise_sqlite(storage) if database is not None else storage  # a shared file
    except ImportError as err:
        raise StorageError(f"storage {mask_url(url)} needs a database driver: "
                           f"{scrub(str(err.msg), url)}. For PostgreSQL: pip install "
                           "psycopg2-binary.") from None
    except Exception as err:  # sqlalchemy.exc.OperationalError and friends
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise StorageError(f"cannot open storage {mask_url(url)}: "
                           f"{scrub(first, url)[:200]}") from None


