"""Study storage: any SQLAlchemy URL. SQLite in ``studies/db/`` by default (one process);
PostgreSQL for several workers, with heartbeats so that a dead worker's trial is retried."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from .errors import StorageError
from .spec import studies_dir

__all__ = ["default_url", "resolve_url", "check_url", "open_storage", "mask_url", "is_sqlite",
           "heartbeat_settings",
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


def _parse(url: str):
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise StorageError(f"malformed storage URL {url!r}; expected e.g. sqlite:///path.db or "
                           "postgresql+psycopg2://user:password@host:5432/db.") from None


def check_url(url: str) -> None:
    """Raise :class:`StorageError` when ``url`` is not a well-formed SQLAlchemy URL."""
    _parse(url)


def mask_url(url: str) -> str:
    """The URL with its password hidden, safe to print and to store in provenance."""
    try:
        return _parse(url).render_as_string(hide_password=True)
    except StorageError:
        return "<malformed URL>"


def is_sqlite(url: str) -> bool:
    return _parse(url).get_backend_name() == "sqlite"


def open_storage(url: str | None = None, *, create: bool = True) -> RDBStorage:
    """An Optuna RDB storage for ``url`` with heartbeats (retrying stale trials) and, for
    PostgreSQL, ``pool_pre_ping``. Raises :class:`StorageError` with one line on failure."""
    url = resolve_url(url)
    parsed = _parse(url)
    engine_kwargs = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            if not folder.exists():
                if not create:
                    raise StorageError(f"no study database at {parsed.database}; run "
                                       "`tuner optimize` first or pass --storage.")
                folder.mkdir(parents=True, exist_ok=True)
            elif not create and not Path(parsed.database).exists():
                raise StorageError(f"no study database at {parsed.database}; run "
                                   "`tuner optimize` first or pass --storage.")
    else:
        engine_kwargs["pool_pre_ping"] = True
    interval, grace = heartbeat_settings()
    try:
        with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5, but needed
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=interval, grace_period=grace,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY))
    except ImportError as err:
        raise StorageError(f"storage {mask_url(url)} needs a database driver: {err.msg}. "
                           "For PostgreSQL: pip install psycopg2-binary.") from None
    except Exception as err:  # sqlalchemy.exc.OperationalError and friends
        raise StorageError(f"cannot open storage {mask_url(url)}: "
                           f"{str(err).splitlines()[0][:200]}") from None


