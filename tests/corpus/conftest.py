"""The corpus tests' setup: the cases module (tests/data/bad/cases.py) as `bad_cases`, and an S3 stand-in."""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CASES_FILE = Path(__file__).resolve().parents[1] / "data" / "bad" / "cases.py"


def _load_cases() -> None:
    """Import the corpus under a unique module name, so `from bad_cases import CASES` works in tests."""
    if "bad_cases" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("bad_cases", CASES_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_cases"] = module
    spec.loader.exec_module(module)


_load_cases()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """A real moto server (S3 over HTTP) for one test module, with dummy credentials in the env.

    The same pattern as tests/integration/conftest.py; boto3 clients reach it through AWS_ENDPOINT_URL.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
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


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> tuple[Any, str]:
    """An S3 client and a fresh bucket for one test (the server dies with the module)."""
    import boto3

    client = boto3.client("s3")
    name = f"corpus-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name
