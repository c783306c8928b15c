"""One migrated Airflow environment shared by every integration test (importing Airflow costs ~7 s)."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator

import pytest

from airflow_home import STACK
from feedline.stack import Stack
from lambda_support import LambdaBuild, LambdaEmulator, build_lambda, runtime_env


@pytest.fixture(scope="session")
def airflow_project() -> Iterator[Stack]:
    """The test process's Airflow deployment (configured in tests/conftest.py), its metadata DB migrated."""
    STACK.migrate()
    os.environ["FEEDLINE_HOME"] = str(STACK.project)
    yield STACK
    STACK.stop()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A real moto server (S3, SQS, … over HTTP) for one test module, with dummy credentials in the env.

    boto3 clients created inside the module reach it through AWS_ENDPOINT_URL.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its backends per process, not per server: start each module from empty accounts.
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30)
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def lambda_build(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> LambdaBuild:
    """The x86_64 transform zip, unzipped, and the runtime venv: built once, then reused while unchanged."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # the first build takes a minute: show its progress
        return build_lambda(tmp_path_factory.mktemp("lambda"))


@pytest.fixture(scope="module")
def lambda_function(
    lambda_build: LambdaBuild, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LambdaEmulator]:
    """The transform function behind a local Invoke API, run by the real awslambdaric bootstrap; S3: moto."""
    with LambdaEmulator(
        lambda_build, env=runtime_env(moto_endpoint), tmpdir=tmp_path_factory.mktemp("sandbox")
    ) as emulator:
        yield emulator
