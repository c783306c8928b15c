"""Where feedline runs: the profile (local or aws), its lake areas, warehouse and transform runtime.

Settings come from an optional project file (`feedline.yaml` in FEEDLINE_HOME, or FEEDLINE_CONFIG) whose
chosen profile is then overridden by environment variables. Credentials never live here: the warehouse
and AWS are reached through Airflow connections (or a DSN in the environment outside Airflow).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from feedline.errors import ContractError

AREAS = ("processed", "quarantine", "archive")
ENV = {  # setting -> environment variable
    "lake": "FEEDLINE_LAKE",
    "processed": "FEEDLINE_PROCESSED",
    "quarantine": "FEEDLINE_QUARANTINE",
    "archive": "FEEDLINE_ARCHIVE",
    "warehouse": "FEEDLINE_WAREHOUSE",
    "warehouse_conn_id": "FEEDLINE_WAREHOUSE_CONN_ID",
    "transform": "FEEDLINE_TRANSFORM",
    "lambda_function": "FEEDLINE_LAMBDA_FUNCTION",
    "aws_conn_id": "FEEDLINE_AWS_CONN_ID",
    "sqs_queue": "FEEDLINE_SQS_QUEUE",
}


class Profile(BaseModel):
    """One profile of `feedline.yaml`; every field can be overridden by its FEEDLINE_* variable."""

    model_config = ConfigDict(extra="forbid")

    lake: str | None = Field(None, description="Base of the lake areas: a folder or s3://bucket/prefix.")
    processed: str | None = Field(None, description="Clean Parquet area (default: <lake>/processed).")
    quarantine: str | None = Field(
        None, description="Rejected rows and bad files (default: <lake>/quarantine)."
    )
    archive: str | None = Field(None, description="Raw files after loading (default: <lake>/archive).")
    warehouse: str | None = Field(
        None, description="DuckDB file, postgresql:// or redshift:// DSN (no secrets)."
    )
    warehouse_conn_id: str | None = Field(
        None, description="Airflow connection of the warehouse (preferred)."
    )
    transform: Literal["local", "lambda"] | None = Field(
        None, description="Run the transform in-process or as Lambda."
    )
    lambda_function: str | None = Field(None, description="Name or ARN of the transform Lambda.")
    aws_conn_id: str | None = Field(None, description="Airflow connection for S3, SQS and Lambda.")
    sqs_queue: str | None = Field(
        None, description="URL of the SQS queue receiving the raw bucket's S3 events."
    )


class ProjectConfig(BaseModel):
    """The `feedline.yaml` project file."""

    model_config = ConfigDict(extra="forbid")

    profile: str = "local"
    profiles: dict[str, Profile] = Field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Process-wide locations and runtimes. Relative folders resolve against `home`."""

    home: Path
    feeds_dir: Path
    lake: str
    warehouse: str
    profile: str = "local"
    areas: Mapping[str, str] = field(default_factory=dict)
    warehouse_conn_id: str | None = None
    transform: str = "local"
    lambda_function: str | None = None
    aws_conn_id: str = "aws_default"
    sqs_queue: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("FEEDLINE_HOME") or Path.cwd()).resolve()
        feeds = Path(env.get("FEEDLINE_FEEDS") or home / "feeds")
        config_path = Path(env.get("FEEDLINE_CONFIG") or home / "feedline.yaml")
        project = _read_config(config_path) if config_path.exists() else ProjectConfig()
        profile_name = env.get("FEEDLINE_PROFILE") or project.profile
        if project.profiles and profile_name not in project.profiles:
            known = ", ".join(sorted(project.profiles))
            raise ContractError(
                f"{config_path}: profile: {profile_name!r} is not defined; use one of: {known}"
            )
        chosen = project.profiles.get(profile_name, Profile()).model_dump()
        values: dict[str, Any] = {k: v for k, v in chosen.items() if v is not None}
        values.update({name: env[var] for name, var in ENV.items() if env.get(var)})

        def local(path: str) -> str:
            if path.startswith(("s3://", "postgresql://", "postgres://", "redshift://", "redshift+")):
                return path
            candidate = Path(path.removeprefix("duckdb://").removeprefix("file://"))
            return str(candidate if candidate.is_absolute() else home / candidate)

        lake = local(values.get("lake") or "data")
        return cls(
            home=home,
            feeds_dir=feeds if feeds.is_absolute() else home / feeds,
            lake=lake,
            warehouse=local(values.get("warehouse") or str(home / "data" / "warehouse.duckdb")),
            profile=profile_name,
            areas={a: local(values[a]) for a in AREAS if values.get(a)},
            warehouse_conn_id=values.get("warehouse_conn_id"),
            transform=values.get("transform") or ("lambda" if values.get("lambda_function") else "local"),
            lambda_function=values.get("lambda_function"),
            aws_conn_id=values.get("aws_conn_id") or "aws_default",
            sqs_queue=values.get("sqs_queue"),
        )

    def with_feeds(self, feeds_dir: Path) -> Settings:
        return replace(self, feeds_dir=feeds_dir)

    def area_root(self, name: str) -> str:
        """The base location of one lake area, before the feed's own folder."""
        if name not in AREAS:
            raise ValueError(f"unknown lake area {name!r}")
        return self.areas.get(name) or f"{self.lake.rstrip('/')}/{name}"

    def area(self, name: str, feed: str) -> str:
        """The lake location of one feed's `processed`, `quarantine` or `archive` area."""
        return f"{self.area_root(name).rstrip('/')}/{feed}"

    def source_location(self, uri: str) -> str:
        """Resolve a feed source URI: s3:// stays, a relative folder is taken from `home`."""
        if uri.startswith("s3://"):
            return uri
        path = Path(uri.removeprefix("file://"))
        return str(path if path.is_absolute() else self.home / path)


def _read_config(path: Path) -> ProjectConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return ProjectConfig.model_validate(raw)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: is not valid YAML ({exc}); fix the syntax") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise ContractError(f"{path}: {problems}") from None
