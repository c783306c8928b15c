"""A project-local Airflow 3 deployment: config, metadata DB, the four components, started and stopped by PID.

`make run` drives it through `python -m feedline.quickstart`; the end-to-end tests start the same stack.
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
from pathlib import Path

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")

CONFIG_TEMPLATE = """\
# Written by feedline (python -m feedline.stack); secrets are generated per installation.
[core]
dags_folder = {dags}
load_examples = False
executor = LocalExecutor
parallelism = {parallelism}
max_active_tasks_per_dag = {parallelism}
dags_are_paused_at_creation = False
fernet_key = {fernet_key}
execution_api_server_url = http://127.0.0.1:{port}/execution/
auth_manager = airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
simple_auth_manager_users = admin:admin
simple_auth_manager_passwords_file = {home}/simple_auth_manager_passwords.json.generated

[database]
sql_alchemy_conn = sqlite:///{home}/airflow.db

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
"""


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

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            AIRFLOW_HOME=str(self.home),
            AIRFLOW_CONFIG=str(self.home / "airflow.cfg"),
            FEEDLINE_HOME=str(self.project),
            PATH=f"{self.venv_bin}{os.pathsep}{env.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
        )
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
        config = CONFIG_TEMPLATE.format(
            dags=self.project / "dags", home=self.home, port=self.port, parallelism=self.parallelism, **keys
        )
        (self.home / "airflow.cfg").write_text(config)

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
            "Pool.create_or_update_pool('feedline_warehouse', slots=1, include_deferred=False,\n"
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

    def pids(self) -> dict[str, int]:
        """The components this stack started that are still alive."""
        alive: dict[str, int] = {}
        for name in COMPONENTS:
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
        for name in COMPONENTS:
            if name in running:
                continue
            args = [str(self.venv_bin / "airflow"), name]
            if name == "api-server":
                args += ["--port", str(self.port), "--host", "127.0.0.1"]
            with open(self.log_dir / f"{name}.log", "ab") as log:
                proc = subprocess.Popen(
                    args,
                    env=self.env(),
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
        wanted = {"metadatabase", "scheduler", "triggerer", "dag_processor"}
        deadline = time.monotonic() + timeout
        status: dict[str, str] = {}
        while time.monotonic() < deadline:
            status = self.health()
            if status and all(status.get(name) == "healthy" for name in wanted):
                return
            dead = [name for name in COMPONENTS if name not in self.pids()]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited; see {self.log_dir}/<component>.log")
            time.sleep(2)
        raise TimeoutError(
            f"Airflow not healthy after {timeout:.0f}s: {status or 'API not answering'}; see {self.log_dir}"
        )

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
    )


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    stack = project_stack()
    if args[:1] == ["stop"]:
        stopped = stack.stop()
        print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
        return 0
    if args[:1] == ["status"]:
        print(json.dumps({"pids": stack.pids(), "health": stack.health()}, indent=2))
        return 0
    print("usage: python -m feedline.stack stop|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
