"""Warehouse DSNs come from Airflow connections, never from the project's files."""

from __future__ import annotations

import json

import pytest

from feedline.errors import ContractError
from feedline.stack import Stack

pytestmark = pytest.mark.airflow


def test_postgres_and_redshift_connections_become_dsns(
    airflow_project: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedline.airflow.connections import warehouse_dsn

    monkeypatch.setenv("AIRFLOW_CONN_PG", "postgres://loader:p%40ss@db.internal:5433/analytics")
    assert warehouse_dsn("pg") == "postgresql://loader:p%40ss@db.internal:5433/analytics"
    redshift = {
        "conn_type": "redshift",
        "host": "wg.123.eu-west-1.redshift-serverless.amazonaws.com",
        "port": 5439,
        "schema": "dev",
        "login": "admin",
        "password": "s3cret",
        "extra": {"iam_role": "arn:aws:iam::123456789012:role/copy", "unrelated": "x"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_RS", json.dumps(redshift))
    assert warehouse_dsn("rs") == (
        "redshift://admin:s3cret@wg.123.eu-west-1.redshift-serverless.amazonaws.com:5439/dev"
        "?iam_role=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fcopy"
    )
    monkeypatch.setenv("AIRFLOW_CONN_FS", json.dumps({"conn_type": "fs"}))
    with pytest.raises(ContractError, match="needs a 'postgres' or 'redshift' connection"):
        warehouse_dsn("fs")
