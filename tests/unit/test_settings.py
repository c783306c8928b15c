"""Profiles: the project file picks a profile, environment variables override it, errors name the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedline.errors import ContractError
from feedline.settings import Settings

CONFIG = """
profile: local
profiles:
  local:
    lake: lake
  aws:
    lake: s3://acme-lake
    processed: s3://acme-processed/
    warehouse_conn_id: feedline_redshift
    lambda_function: feedline-transform
    sqs_queue: https://sqs.eu-west-1.amazonaws.com/123456789012/raw-events
"""


def test_defaults_without_a_project_file(tmp_path: Path) -> None:
    settings = Settings.from_env({"FEEDLINE_HOME": str(tmp_path)})
    assert settings.profile == "local"
    assert settings.lake == str(tmp_path / "data")
    assert settings.warehouse == str(tmp_path / "data" / "warehouse.duckdb")
    assert settings.area("processed", "orders") == f"{tmp_path}/data/processed/orders"
    assert settings.transform == "local"
    assert settings.source_location("data/landing/orders") == str(tmp_path / "data" / "landing" / "orders")
    assert settings.source_location("s3://b/p/") == "s3://b/p/"


def test_profile_from_file_and_environment(tmp_path: Path) -> None:
    (tmp_path / "feedline.yaml").write_text(CONFIG)
    local = Settings.from_env({"FEEDLINE_HOME": str(tmp_path)})
    assert local.lake == str(tmp_path / "lake")
    aws = Settings.from_env({"FEEDLINE_HOME": str(tmp_path), "FEEDLINE_PROFILE": "aws"})
    assert aws.profile == "aws"
    assert aws.area("processed", "orders") == "s3://acme-processed/orders"
    assert aws.area("archive", "orders") == "s3://acme-lake/archive/orders"
    assert aws.transform == "lambda"
    assert aws.warehouse_conn_id == "feedline_redshift"
    assert aws.sqs_queue is not None and aws.sqs_queue.endswith("/raw-events")
    overridden = Settings.from_env(
        {"FEEDLINE_HOME": str(tmp_path), "FEEDLINE_PROFILE": "aws", "FEEDLINE_TRANSFORM": "local"}
    )
    assert overridden.transform == "local"


def test_bad_project_files_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "feedline.yaml").write_text(CONFIG)
    with pytest.raises(ContractError, match="profile: 'prod' is not defined; use one of: aws, local"):
        Settings.from_env({"FEEDLINE_HOME": str(tmp_path), "FEEDLINE_PROFILE": "prod"})
    (tmp_path / "feedline.yaml").write_text("profiles:\n  local:\n    transform: docker\n")
    with pytest.raises(ContractError, match=r"feedline.yaml: profiles.local.transform"):
        Settings.from_env({"FEEDLINE_HOME": str(tmp_path)})
    (tmp_path / "feedline.yaml").write_text("profiles:\n  local:\n    lakee: x\n")
    with pytest.raises(ContractError, match=r"profiles.local.lakee: Extra inputs are not permitted"):
        Settings.from_env({"FEEDLINE_HOME": str(tmp_path)})
