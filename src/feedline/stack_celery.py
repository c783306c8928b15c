"""What a stack on the CeleryExecutor needs from the machine: PostgreSQL databases for Airflow's metadata
and the warehouse, a Redis database of its own as the broker, and a name per worker.

Several stacks (tests, benchmarks, `make run`) share the machine's one PostgreSQL server and one Redis
server, so each stack's databases are named after its AIRFLOW_HOME and each claims a free Redis database:
two stacks on one broker queue would run each other's tasks.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

#: Set in each Celery worker's environment; `worker_hostname` reads it in the task processes it forks.
WORKER_ENV = "FEEDLINE_WORKER_NAME"
#: The key that marks a Redis database as one stack's broker; its value is that stack's AIRFLOW_HOME.
CLAIM_KEY = "feedline:stack"
BROKER_DBS = range(1, 16)  # Redis' 16 default databases; 0 is left to whoever uses Redis unconfigured

CELERY_SECTIONS = """
[celery]
broker_url = {broker_url}
result_backend = {result_backend}
worker_concurrency = {concurrency}
worker_prefetch_multiplier = 1
sync_parallelism = 1

[celery_broker_transport_options]
visibility_timeout = 21600
"""


class StackServiceError(RuntimeError):
    """PostgreSQL or Redis cannot serve a Celery stack; the message says what to start or set."""


@dataclass(frozen=True)
class CeleryOptions:
    """The Celery scale-out of a stack: `workers` processes of `concurrency` task slots each, against a
    PostgreSQL server (`postgres`, a URL of a database to connect to for CREATE DATABASE) and a Redis
    server (`redis`, without a database number: the stack claims one)."""

    workers: int = 2
    concurrency: int = 2
    postgres: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    redis: str = "redis://127.0.0.1:6379"

    def worker_names(self) -> list[str]:
        return [f"worker{i}" for i in range(1, self.workers + 1)]


def worker_hostname() -> str:
    """`[core] hostname_callable` of a Celery stack: `worker<i>@<host>` inside worker `i` (the name Celery
    knows it by), the plain host name elsewhere. Every worker of a one-machine stack has the same host
    name, so without this a task instance's `hostname` would not tell which worker ran it."""
    name = os.environ.get(WORKER_ENV)
    return f"{name}@{socket.gethostname()}" if name else socket.getfqdn()


LOCAL_SETTINGS = '''\
"""Written by feedline for a Celery stack (feedline.stack_celery.restore_database_retry)."""

from feedline.stack_celery import restore_database_retry as _restore

__all__: list[str] = []  # Airflow copies every public name of this module into airflow.settings
_restore()
'''


def restore_database_retry() -> None:
    """Give `celery.backends.database` back the `retry` decorator that apache-airflow-providers-celery
    3.26 imports and celery 5.7 removed (its DatabaseBackend now retries by itself), so the executor and
    the workers can import; a no-op on a celery that still has it. The same contract as the removed
    decorator: up to `max_retries` (3) attempts on a database error. Run in every Airflow process through
    airflow_local_settings."""
    import celery.backends.database as database

    if hasattr(database, "retry"):
        return
    from functools import wraps

    from sqlalchemy.exc import DatabaseError, InvalidRequestError
    from sqlalchemy.orm.exc import StaleDataError

    def retry(fun: Callable[..., object]) -> Callable[..., object]:
        @wraps(fun)
        def attempts(*args: object, **kwargs: object) -> object:
            tries = int(str(kwargs.pop("max_retries", 3)))
            for attempt in range(1, tries + 1):
                try:
                    return fun(*args, **kwargs)
                except (DatabaseError, InvalidRequestError, StaleDataError):
                    if attempt >= tries:
                        raise
            return None

        return attempts

    database.retry = retry  # type: ignore[attr-defined]


def database_names(home: Path) -> tuple[str, str]:
    """(metadata, warehouse) database names of the stack at `home`: stable across restarts."""
    digest = hashlib.sha1(str(home.resolve()).encode(), usedforsecurity=False).hexdigest()[:12]
    return f"feedline_airflow_{digest}", f"feedline_warehouse_{digest}"


def database_url(server: str, name: str) -> str:
    """The URL of database `name` on the server of `server` (a postgresql:// URL of any database)."""
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


def sqlalchemy_url(url: str) -> str:
    """A postgresql:// URL as SQLAlchemy takes it with the installed driver, psycopg 3."""
    return "postgresql+psycopg://" + url.split("://", 1)[1]


def ensure_database(server: str, name: str) -> str:
    """Create database `name` unless it exists; returns its URL."""
    import psycopg

    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=5) as admin:
            found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if found is None:
                admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.errors.DuplicateDatabase:
        pass  # created by a concurrent configure of the same stack
    except psycopg.OperationalError as exc:
        raise StackServiceError(
            f"PostgreSQL at {_hidden(server)} does not answer ({str(exc).strip().splitlines()[0]}): "
            "the Celery stack keeps Airflow's metadata and the warehouse there; start it (.ci/run does) "
            "or pass CeleryOptions(postgres=...)"
        ) from exc
    return database_url(server, name)


def drop_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def ping_redis(url: str) -> str | None:
    """Why Redis at `url` cannot be used, or None when it answers."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis at {url} does not answer ({exc})"
    return None


def claim_broker_db(url: str, home: Path) -> int:
    """A Redis database for this stack's broker: the one it claimed before, else a free one (empty, or
    claimed by a stack whose home is gone: its leftovers are flushed). Raises StackServiceError."""
    import redis

    owner = str(home.resolve())
    if problem := ping_redis(url):
        raise StackServiceError(
            f"{problem}: the Celery stack's broker; start it (`redis-server --daemonize yes`, or .ci/run)"
        )
    clients = {db: redis.Redis.from_url(url, db=db, socket_connect_timeout=3) for db in BROKER_DBS}
    for db, client in clients.items():
        if _text(client.get(CLAIM_KEY)) == owner:
            return db
    for db, client in clients.items():
        holder = _text(client.get(CLAIM_KEY))
        if holder is None and client.dbsize() == 0 and client.set(CLAIM_KEY, owner, nx=True):
            return db
        if holder is not None and not Path(holder).exists():
            client.flushdb()
            if client.set(CLAIM_KEY, owner, nx=True):
                return db
    raise StackServiceError(
        f"no free Redis database at {url} (1 to 15 are all claimed by feedline stacks or hold other data); "
        "stop and destroy old stacks, or pass CeleryOptions(redis=...) of another Redis server"
    )


def release_broker_db(url: str, db: int, home: Path) -> None:
    """Flush and free this stack's broker database (only while it still holds this stack's claim)."""
    import redis

    client = redis.Redis.from_url(url, db=db, socket_connect_timeout=3)
    if _text(client.get(CLAIM_KEY)) == str(home.resolve()):
        client.flushdb()


def workers_ready(broker_url: str, names: list[str], timeout: float = 1.0) -> set[str]:
    """Which of the worker `names` answer a Celery ping on the broker right now."""
    from celery import Celery

    app = Celery(broker=broker_url)
    try:
        replies = app.control.ping(timeout=timeout)
    except Exception:  # the broker restarting: no worker counts as ready
        return set()
    finally:
        app.close()
    answered = {node.split("@", 1)[0] for reply in replies for node in reply}
    return answered & set(names)


def wait_workers(broker_url: str, names: list[str], timeout: float, exited: Callable[[], list[str]]) -> None:
    """Wait until every worker answers a ping; a worker in `exited()` stops the wait with its name."""
    deadline = time.monotonic() + timeout
    ready: set[str] = set()
    while time.monotonic() < deadline:
        ready = workers_ready(broker_url, names)
        if ready == set(names):
            return
        if dead := exited():
            raise RuntimeError(f"Celery {', '.join(dead)} exited; see its log under the stack's processes/")
        time.sleep(1)
    missing = sorted(set(names) - ready)
    raise TimeoutError(f"Celery {', '.join(missing)} did not answer a ping within {timeout:.0f}s")


def _text(value: object) -> str | None:
    return value.decode() if isinstance(value, bytes) else None if value is None else str(value)


def _hidden(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{parts.username or ''}@{host}{port}", parts.path, "", ""))
