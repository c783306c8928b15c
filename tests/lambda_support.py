"""A local Lambda service for one function: the Invoke API in front of the Runtime API that the real
`awslambdaric` bootstrap polls — what AWS's Runtime Interface Emulator does — plus the zip's build."""

from __future__ import annotations

import json
import os
import queue
import select
import socket
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

REPO = Path(__file__).resolve().parents[1]
RUNTIME = "/2018-06-01/runtime"
INVOKE = "/2015-03-31/functions/"
ACCOUNT = "123456789012"


@dataclass(frozen=True)
class LambdaBuild:
    """The unzipped x86_64 zip (the function's /var/task) and a python3.12 with the runtime's own parts."""

    task_root: Path
    python: Path


def build_lambda(workdir: Path) -> LambdaBuild:
    """Build (or reuse, when unchanged) the zip and the runtime venv through lambda/package.py; unzip it."""
    subprocess.run(
        [sys.executable, str(REPO / "lambda" / "package.py"), "--arch", "x86_64", "--runtime-venv"],
        check=True,
    )
    task_root = workdir / "task"
    with zipfile.ZipFile(REPO / "dist" / "lambda" / "feedline-transform-x86_64.zip") as zf:
        zf.extractall(task_root)
    return LambdaBuild(task_root, REPO / "dist" / "lambda" / "runtime-venv" / "bin" / "python")


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    body: bytes = b""
    error: bool = False
    cancelled: bool = False


class LambdaEmulator:
    """One function: `POST /2015-03-31/functions/<name>/invocations` runs the event through the runtime
    process (started on the first invoke, restarted after it exits or times out), as Lambda does.

    Function errors answer 200 with `X-Amz-Function-Error: Unhandled` and the error JSON; a timeout gives
    `Sandbox.Timedout`, an exited runtime `Runtime.ExitError` (or its init error, e.g. an import error).
    """

    def __init__(
        self,
        build: LambdaBuild,
        *,
        name: str = "feedline-transform",
        timeout: float = 60.0,
        env: dict[str, str] | None = None,
        tmpdir: Path,
        handler: str = "handler.handler",
    ) -> None:
        self.build, self.name, self.timeout, self.handler = build, name, timeout, handler
        self.arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
        self.extra_env, self.tmpdir = env or {}, tmpdir
        self.log_path = tmpdir / "runtime.log"
        self.starts = 0
        self.history: list[Invocation] = []
        self._queue: queue.Queue[Invocation] = queue.Queue()
        self._running: dict[str, Invocation] = {}
        self._init_error: bytes | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._stopping = threading.Event()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LambdaEmulator:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._kill()
        self._server.shutdown()
        self._server.server_close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- the function's sandbox --------------------------------------------------------------------

    def _ensure_runtime(self) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._process is None or self._process.poll() is not None:
                self._init_error = None
                self._process = self._spawn()
                self.starts += 1
            return self._process

    def _spawn(self) -> subprocess.Popen[bytes]:
        (self.tmpdir / "tmp").mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "HOME": str(self.tmpdir),
            "TMPDIR": str(self.tmpdir / "tmp"),
            "PYTHONPATH": str(self.build.task_root),
            "LAMBDA_TASK_ROOT": str(self.build.task_root),
            "_HANDLER": self.handler,
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
            "AWS_LAMBDA_RUNTIME_API": self.endpoint.removeprefix("http://"),
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            **self.extra_env,
        }
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                [str(self.build.python), "-m", "awslambdaric", self.handler],
                cwd=self.build.task_root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _kill(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
                self._process.wait()

    def invoke(self, payload: bytes) -> tuple[bytes, bool]:
        """Run one event synchronously: (response body, whether it is a function error)."""
        process = self._ensure_runtime()
        request_id = str(uuid.uuid4())
        deadline = time.time() + self.timeout
        call = Invocation(request_id, payload, int(deadline * 1000))
        self.history.append(call)
        self._queue.put(call)
        while not call.done.wait(0.02):
            exited = process.poll() is not None
            if exited or time.time() > deadline:
                call.cancelled = True
                if not exited:
                    self._kill()
                    return _error(
                        "Sandbox.Timedout",
                        f"RequestId: {request_id} Error: Task timed out after {self.timeout:.2f} seconds",
                    ), True
                if self._init_error is not None:
                    return self._init_error, True
                return _error(
                    "Runtime.ExitError",
                    f"RequestId: {request_id} Error: Runtime exited with error: "
                    f"exit status {process.returncode}",
                ), True
        return call.body, call.error

    # --- the Runtime API, as the bootstrap sees it ------------------------------------------------

    def next_invocation(self, gone: Callable[[], bool]) -> Invocation | None:
        """The next event for a waiting runtime; None once that runtime is gone (killed while it waited)."""
        while not self._stopping.is_set() and not gone():
            try:
                call = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if gone():  # a killed runtime's poll must not take its successor's event
                self._queue.put(call)
                return None
            if not call.cancelled:
                self._running[call.request_id] = call
                return call
        return None

    def finish(self, request_id: str, body: bytes, *, error: bool) -> bool:
        call = self._running.pop(request_id, None)
        if call is None:
            return False
        call.body, call.error = body, error
        call.done.set()
        return True

    def init_failed(self, body: bytes) -> None:
        self._init_error = body


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a runtime killed mid-request is expected
            super().handle_error(request, client_address)


def _error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": []}).encode()


def _handler_for(emulator: LambdaEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # without it every exchange waits ~40 ms for a delayed ACK

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _peer_gone(self) -> bool:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            if self.path != f"{RUNTIME}/invocation/next":
                return self._send(404, _error("NotFound", self.path))
            call = emulator.next_invocation(self._peer_gone)
            if call is None:
                return self._send(503, _error("ShuttingDown", "the emulator or the runtime is stopping"))
            self._send(
                200,
                call.payload,
                {
                    "Lambda-Runtime-Aws-Request-Id": call.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(call.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": emulator.arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{call.request_id[:8]};Sampled=0",
                },
            )

        def do_POST(self) -> None:
            body, path = self._body(), self.path
            if path.startswith(INVOKE):
                return self._invoke(unquote(path.removeprefix(INVOKE).split("/")[0]), body)
            if path == f"{RUNTIME}/init/error":
                emulator.init_failed(body)
                return self._send(202, b'{"status":"OK"}')
            parts = path.removeprefix(f"{RUNTIME}/invocation/").split("/")
            if (
                path.startswith(f"{RUNTIME}/invocation/")
                and len(parts) == 2
                and parts[1] in ("response", "error")
            ):
                if emulator.finish(parts[0], body, error=parts[1] == "error"):
                    return self._send(202, b'{"status":"OK"}')
                return self._send(400, _error("InvalidRequestID", f"unknown request id {parts[0]}"))
            self._send(404, _error("NotFound", path))

        def _invoke(self, name: str, payload: bytes) -> None:
            if name not in (emulator.name, emulator.arn) and not name.endswith(f":function:{emulator.name}"):
                message = f"Function not found: arn:aws:lambda:us-east-1:{ACCOUNT}:function:{name}"
                return self._send(
                    404,
                    json.dumps({"Type": "User", "Message": message}).encode(),
                    {"x-amzn-ErrorType": "ResourceNotFoundException"},
                )
            kind = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            if kind == "DryRun":
                return self._send(204)
            if kind == "Event":
                threading.Thread(target=emulator.invoke, args=(payload or b"{}",), daemon=True).start()
                return self._send(202)
            body, error = emulator.invoke(payload or b"{}")
            headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": str(uuid.uuid4())}
            if error:
                headers["X-Amz-Function-Error"] = "Unhandled"
            self._send(200, body, headers)

    return Handler


def runtime_env(moto_endpoint: str) -> dict[str, str]:
    """What the function's execution role and the moto stand-in give the runtime process."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
