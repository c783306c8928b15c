"""A project-local Airflow 3 deployment: config, metadata DB, the four components, started and stopped by PID.

`make run` drives it through `python -m feedline.quickstart`; the end-to-end tests start the same stack.
By default it runs the LocalExecutor on SQLite; `executor="celery"` runs the CeleryExecutor instead, with
Airflow's metadata and the warehouse on PostgreSQL, Redis as the broker and Celery workers started and
stopped with the rest (see `feedline.stack_celery` and docs/deploy.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from feedline.stack_celery import CELERY_SECTIONS, LOCAL_SETTINGS, WORKER_ENV, CeleryOptions

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

CONFIG_TEMPLATE = """\
# Written by feedline (python -m feedline.stack); secrets are generated per installation.
[core]
dags_folder = {dags}
load_examples = False
executor = {executor}
parallelism = {parallelism}
max_active_tasks_per_dag = {parallelism}
dags_are_paused_at_creation = False
fernet_key = {fernet_key}
execution_api_server_url = http://127.0.0.1:{port}/execution/
auth_manager = airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
simple_auth_manager_users = admin:admin
simple_auth_manager_passwords_file = {home}/simple_auth_manager_passwords.json.generated
{core_extra}
[database]
sql_alchemy_conn = {sql_alchemy_conn}
{database_extra}
[api]
host = 127.0.0.1
port = {port}
base_url = http://127.0.0.1:{port}
secret_key = {secret_key}
workers = 1

[api_auth]
jwt_secret = {jwt_secret}

[logging]
base_log_folder = {home}/logs

[scheduler]
scheduler_heartbeat_sec = 2
task_queued_timeout = 600
enable_health_check = True

[dag_processor]
refresh_interval = 30
min_file_process_interval = 30
parsing_processes = 1

[triggerer]
capacity = 100

[webserver]
expose_config = False
{extra_sections}"""


#: Imported by the scheduler before it forks its LocalExecutor workers: every task process is a fork of a
#: worker, so it starts with them loaded instead of importing them again (0.23 against 0.48 CPU-s per
#: task process, docs/benchmarks.md, Latency). Third-party only: each task imports feedline itself, so a
#: code change reaches the next task without a restart.
TASK_LIBRARIES = (
    "polars",
    "duckdb",
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.parquet",
    "airflow.dag_processing.dagbag",  # the task runner parses the DAG file with it
    "airflow.sdk.definitions.decorators",  # @task and @task_group in the DAG file
    "airflow.providers.standard.decorators.python",
)
PRELOAD_SETTINGS = """\
\"\"\"Written by feedline (feedline.stack): the scheduler imports the task libraries just before it
forks its LocalExecutor workers, so that task processes (forks of the workers) start with them loaded.\"\"\"

import os
import sys

__all__: list[str] = []  # Airflow copies every public name of this module into airflow.settings

if sys.argv[1:2] == ["scheduler"]:
    _pending = list({modules!r})

    def _preload() -> None:  # at the first fork: Airflow is initialised by then, not while this runs
        import importlib

        while _pending:
            try:
                importlib.import_module(_pending.pop(0))
            except Exception:  # a missing library costs its import in each task, nothing else
                pass

    os.register_at_fork(before=_preload)
"""
#: Files up to this many bytes are loaded by their run's discover task instead of two tasks of their own
#: (FEEDLINE_INLINE_MAX_BYTES, see feedline.airflow.dag_factory); the environment can override it.
INLINE_MAX_BYTES = 8_000_000


class Executor(StrEnum):
    """Where a stack's tasks run: LocalExecutor processes of the scheduler, or Celery workers."""

    local = "local"
    celery = "celery"

    @property
    def airflow_name(self) -> str:
        return "CeleryExecutor" if self is Executor.celery else "LocalExecutor"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    """Whether `pid` runs; reaps it if it is our exited child, and counts a zombie as dead."""
    if pid <= 0:
        return False
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Stack:
    """An Airflow deployment rooted at `home` (AIRFLOW_HOME) serving the project at `project`."""

    project: Path
    home: Path
    port: int = 8080
    parallelism: int = 4
    env_extra: dict[str, str] = field(default_factory=dict)
    executor: Executor = Executor.local
    celery: CeleryOptions = field(default_factory=CeleryOptions)
    #: Slots of the `feedline_warehouse` pool every warehouse-writing task takes: 1 serialises them, as
    #: DuckDB needs; PostgreSQL accepts more (see docs/deploy.md, Warehouse pool).
    warehouse_slots: int = 1

    def __post_init__(self) -> None:
        self.executor = Executor(self.executor)

    @property
    def venv_bin(self) -> Path:
        return Path(sys.executable).parent

    @property
    def pid_dir(self) -> Path:
        return self.home / "pids"

    @property
    def log_dir(self) -> Path:
        return self.home / "processes"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def services_file(self) -> Path:
        """What a Celery stack set up outside its home (databases, broker), for any process to clean up."""
        return self.home / "celery.json"

    def services(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.services_file.read_text()))
        except (OSError, ValueError):
            return {}

    @property
    def broker_url(self) -> str:
        db = self.services().get("broker_db")
        if db is None:
            raise RuntimeError(f"{self.home}: not configured for Celery; run configure() first")
        return f"{self.celery.redis.rstrip('/')}/{db}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW_CONFIG=str(self.home / "airflow.cfg"),
            FEEDLINE_HOME=str(self.project),
            PATH=f"{self.venv_bin}{os.pathsep}{env.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
        )
        if warehouse := self.services().get("warehouse"):
            env["FEEDLINE_WAREHOUSE"] = warehouse  # the stack's own PostgreSQL warehouse
        if self.executor is Executor.local:
            env.setdefault("FEEDLINE_INLINE_MAX_BYTES", str(INLINE_MAX_BYTES))
        env.update(self.env_extra)
        for name in [k for k in env if k.startswith("AIRFLOW__")]:
            env.pop(name)  # the config file is the one source of truth for every process
        return env

    # --- setup ---------------------------------------------------------------------------------------

    def configure(self) -> None:
        """Write airflow.cfg; secrets survive re-runs so tokens and encrypted connections stay valid."""
        self.home.mkdir(parents=True, exist_ok=True)
        secrets_file = self.home / "secrets.json"
        if secrets_file.exists():
            keys = json.loads(secrets_file.read_text())
        else:
            from cryptography.fernet import Fernet

            keys = {
                "fernet_key": Fernet.generate_key().decode(),
                "secret_key": secrets.token_urlsafe(32),
                "jwt_secret": secrets.token_urlsafe(48),
            }
            secrets_file.write_text(json.dumps(keys))
            secrets_file.chmod(0o600)
        if self.executor is Executor.celery:
            backend = self._configure_celery()
        else:
            backend = {
                "sql_alchemy_conn": f"sqlite:///{self.home}/airflow.db",
                "core_extra": "",
                "database_extra": "",
                "extra_sections": "",
            }
            (self.home / "config").mkdir(exist_ok=True)
            settings = PRELOAD_SETTINGS.format(modules=TASK_LIBRARIES)
            (self.home / "config" / "airflow_local_settings.py").write_text(settings)
        config = CONFIG_TEMPLATE.format(
            dags=self.project / "dags",
            home=self.home,
            port=self.port,
            parallelism=self.parallelism,
            executor=self.executor.airflow_name,
            **backend,
            **keys,
        )
        (self.home / "airflow.cfg").write_text(config)

    def _configure_celery(self) -> dict[str, str]:
        """Create the PostgreSQL databases and claim a Redis database; the config lines that use them.

        The warehouse is PostgreSQL too (a database of its own) unless FEEDLINE_WAREHOUSE or
        FEEDLINE_WAREHOUSE_CONN_ID is given: DuckDB admits one writing process, and Celery workers are
        many processes, possibly on many machines. Task results go to Redis, not to a `db+postgresql`
        backend: with celery 5.7 and the celery provider 3.26 the scheduler cannot read a failed task's
        result from the database backend and exits (docs/deploy.md)."""
        from feedline.stack_celery import claim_broker_db, database_names, ensure_database, sqlalchemy_url

        metadata_db, warehouse_db = database_names(self.home)
        metadata = ensure_database(self.celery.postgres, metadata_db)
        given = {**os.environ, **self.env_extra}
        warehouse = None
        if not (given.get("FEEDLINE_WAREHOUSE") or given.get("FEEDLINE_WAREHOUSE_CONN_ID")):
            warehouse = ensure_database(self.celery.postgres, warehouse_db)
        broker_db = claim_broker_db(self.celery.redis, self.home)
        services = {"broker_db": broker_db, "metadata": metadata, "warehouse": warehouse}
        self.services_file.write_text(json.dumps(services, indent=2))
        (self.home / "config").mkdir(exist_ok=True)
        (self.home / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS)
        return {
            "sql_alchemy_conn": sqlalchemy_url(metadata),
            # psycopg 3 serves the async engine too (Airflow would otherwise pick asyncpg); several
            # processes share the machine's PostgreSQL (max_connections 100 by default).
            "database_extra": (
                f"sql_alchemy_conn_async = {sqlalchemy_url(metadata)}\n"
                "sql_alchemy_pool_size = 3\nsql_alchemy_max_overflow = 5\n"
            ),
            "core_extra": "hostname_callable = feedline.stack_celery.worker_hostname\n",
            "extra_sections": CELERY_SECTIONS.format(
                broker_url=self.broker_url,
                result_backend=self.broker_url,
                concurrency=self.celery.concurrency,
            ),
        }

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.venv_bin / "airflow"), *args],
            env=self.env(),
            cwd=self.project,
            capture_output=True,
            text=True,
            check=check,
        )

    def migrate(self) -> None:
        """Create or upgrade the metadata DB, then add the connection and pool the feeds use."""
        self.airflow("db", "migrate")
        script = (
            "from airflow.models import Connection, Pool\n"
            "from airflow.utils.session import create_session\n"
            "with create_session() as s:\n"
            "    if not s.query(Connection).filter_by(conn_id='fs_default').first():\n"
            "        s.add(Connection(conn_id='fs_default', conn_type='fs', extra='{\"path\": \"/\"}'))\n"
            f"Pool.create_or_update_pool('feedline_warehouse', slots={self.warehouse_slots},\n"
            "    include_deferred=False,\n"
            "    description='Serializes feedline warehouse writes (DuckDB admits one writing process)')\n"
        )
        subprocess.run(
            [sys.executable, "-c", script],
            env=self.env(),
            cwd=self.project,
            check=True,
            capture_output=True,
            text=True,
        )

    # --- processes -----------------------------------------------------------------------------------

    def components(self) -> list[str]:
        """The processes this stack runs: Airflow's four components, then any Celery workers."""
        workers = self.celery.worker_names() if self.executor is Executor.celery else []
        return [*COMPONENTS, *workers]

    def _command(self, name: str) -> tuple[list[str], dict[str, str]]:
        """The command line and environment of one component."""
        airflow, env = str(self.venv_bin / "airflow"), self.env()
        if name == "api-server":
            return [airflow, name, "--port", str(self.port), "--host", "127.0.0.1"], env
        if name in COMPONENTS:
            return [airflow, name], env
        env[WORKER_ENV] = name
        # Logs go to the shared base_log_folder, which the API server reads; two workers on one machine
        # would also fight over the log server's port.
        args = ["celery", "worker", "--concurrency", str(self.celery.concurrency)]
        args += ["--celery-hostname", f"{name}@%h", "--skip-serve-logs", "--without-gossip"]
        return [airflow, *args, "--without-mingle"], env

    def pids(self) -> dict[str, int]:
        """The components this stack started that are still alive (any it ever started, by PID file)."""
        alive: dict[str, int] = {}
        found = sorted(p.stem for p in self.pid_dir.glob("*.pid")) if self.pid_dir.exists() else []
        for name in dict.fromkeys([*self.components(), *found]):
            pid_file = self.pid_dir / f"{name}.pid"
            if not pid_file.exists():
                continue
            pid = int(pid_file.read_text().strip() or 0)
            if not _alive(pid):
                pid_file.unlink(missing_ok=True)
                continue
            alive[name] = pid
        return alive

    def start(self) -> None:
        """Start every component not already running, each in its own process group."""
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        running = self.pids()
        if "api-server" not in running and _port_open(self.port):
            raise RuntimeError(f"port {self.port} is already in use; set FEEDLINE_PORT to a free port")
        for name in self.components():
            if name in running:
                continue
            args, env = self._command(name)
            with open(self.log_dir / f"{name}.log", "ab") as log:
                proc = subprocess.Popen(
                    args,
                    env=env,
                    cwd=self.project,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            (self.pid_dir / f"{name}.pid").write_text(str(proc.pid))

    def health(self) -> dict[str, str]:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=3) as resp:  # noqa: S310
                body = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return {}
        return {name: str(part.get("status")) for name, part in body.items() if isinstance(part, dict)}

    def wait_healthy(self, timeout: float = 240) -> None:
        """Wait until the API reports every component healthy and every Celery worker answers a ping."""
        wanted = {"metadatabase", "scheduler", "triggerer", "dag_processor"}
        deadline = time.monotonic() + timeout
        status: dict[str, str] = {}
        while time.monotonic() < deadline:
            status = self.health()
            if status and all(status.get(name) == "healthy" for name in wanted):
                if self.executor is Executor.celery:
                    self._wait_workers(deadline - time.monotonic())
                return
            dead = [name for name in self.components() if name not in self.pids()]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited; see {self.log_dir}/<component>.log")
            time.sleep(2)
        raise TimeoutError(
            f"Airflow not healthy after {timeout:.0f}s: {status or 'API not answering'}; see {self.log_dir}"
        )

    def _wait_workers(self, timeout: float) -> None:
        from feedline.stack_celery import wait_workers

        names = self.celery.worker_names()
        wait_workers(
            self.broker_url, names, max(timeout, 5), lambda: [n for n in names if n not in self.pids()]
        )

    def destroy(self) -> None:
        """Stop the stack and remove what a Celery stack created outside its home: the metadata and
        warehouse databases, and its claim on (and contents of) its Redis database."""
        from feedline.stack_celery import database_names, drop_database, release_broker_db

        self.stop()
        services = self.services()
        if not services:
            return
        if services.get("broker_db") is not None:
            release_broker_db(self.celery.redis, int(services["broker_db"]), self.home)
        metadata_db, warehouse_db = database_names(self.home)
        drop_database(self.celery.postgres, metadata_db)
        if services.get("warehouse"):
            drop_database(self.celery.postgres, warehouse_db)
        self.services_file.unlink(missing_ok=True)

    def stop(self, timeout: float = 30) -> list[str]:
        """Stop every component this stack started (its whole process group), by PID."""
        running = self.pids()
        for pid in running.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pids():
            time.sleep(0.5)
        for pid in self.pids().values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        for name in running:
            (self.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        return list(running)

    def password(self) -> str | None:
        path = self.home / "simple_auth_manager_passwords.json.generated"
        try:
            return str(json.loads(path.read_text()).get("admin"))
        except (OSError, ValueError):
            return None

    def token(self) -> str:
        """An API token for the admin user (for tests and scripts)."""
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/auth/token",
            data=json.dumps({"username": "admin", "password": self.password()}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return str(json.loads(resp.read())["access_token"])

    def api(self, method: str, path: str, body: object | None = None) -> object:
        request = urllib.request.Request(  # noqa: S310
            f"{self.url}/api/v2/{path.lstrip('/')}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token()}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=15) as resp:  # noqa: S310
            return json.loads(resp.read() or b"null")


def project_stack(project: Path | None = None) -> Stack:
    project = (project or Path(os.environ.get("FEEDLINE_HOME") or Path.cwd())).resolve()
    home = Path(os.environ.get("FEEDLINE_AIRFLOW_HOME") or project / ".airflow")
    return Stack(
        project=project,
        home=home,
        port=int(os.environ.get("FEEDLINE_PORT", "8080")),
        parallelism=int(os.environ.get("FEEDLINE_PARALLELISM", "4")),
        executor=Executor(os.environ.get("FEEDLINE_EXECUTOR") or "local"),
        celery=CeleryOptions(workers=int(os.environ.get("FEEDLINE_CELERY_WORKERS", "2"))),
    )


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    stack = project_stack()
    if args[:1] == ["stop"]:
        stopped = stack.stop()
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    if args[:1] == ["destroy"]:
        stack.destroy()
        print(f"stopped {stack.home} and removed its Celery databases and broker claim, if any")
        return 0
    if args[:1] == ["status"]:
        print(json.dumps({"pids": stack.pids(), "health": stack.health()}, indent=2))
        return 0
    print("usage: python -m feedline.stack stop|status|destroy", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
