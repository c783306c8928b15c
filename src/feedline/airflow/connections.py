"""Turn Airflow connections into what the pure core needs: a warehouse DSN, a configured pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from feedline.contract import Feed
from feedline.errors import ContractError
from feedline.settings import Settings

if TYPE_CHECKING:
    from feedline.pipeline import FeedPipeline

SCHEMES = {"postgres": "postgresql", "postgresql": "postgresql", "redshift": "redshift"}


def warehouse_dsn(conn_id: str) -> str:
    """The DSN of the warehouse connection `conn_id` (postgres or redshift type)."""
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    scheme = SCHEMES.get(str(conn.conn_type))
    if scheme is None:
        raise ContractError(
            f"Airflow connection {conn_id!r} has type {conn.conn_type!r}; "
            "feedline needs a 'postgres' or 'redshift' connection"
        )
    auth = quote(conn.login or "", safe="")
    if conn.password:
        auth += ":" + quote(conn.password, safe="")
    host = f"{auth}@{conn.host}" if auth else str(conn.host)
    port = f":{conn.port}" if conn.port else ""
    extra: dict[str, Any] = dict(conn.extra_dejson or {})
    query = {k: str(v) for k, v in extra.items() if k in ("iam_role", "region", "sslmode", "connect_timeout")}
    suffix = f"?{urlencode(query)}" if query else ""
    return f"{scheme}://{host}{port}/{conn.schema or ''}{suffix}"


def lambda_transformer(settings: Settings) -> Any:
    """A pipeline transformer that runs the transform as the configured AWS Lambda."""
    from feedline.airflow.lambda_transform import invoke_transform

    function = settings.lambda_function
    if not function:
        raise ContractError("transform 'lambda' needs lambda_function (FEEDLINE_LAMBDA_FUNCTION) to be set")

    def run(feed: Feed, ref: dict[str, Any], source: str, processed: str, quarantine: str) -> dict[str, Any]:
        result: dict[str, Any] = invoke_transform(
            feed,
            ref,
            function_name=function,
            source_uri=source,
            processed_uri=processed,
            quarantine_uri=quarantine,
            aws_conn_id=settings.aws_conn_id,
        )
        return result

    return run


def task_pipeline(feed: Feed, settings: Settings) -> FeedPipeline:
    """The pipeline as a task runs it: warehouse and AWS through Airflow connections where configured."""
    from feedline.pipeline import FeedPipeline

    warehouse = None
    if settings.warehouse_conn_id:
        from feedline.warehouse import connect_warehouse

        warehouse = connect_warehouse(warehouse_dsn(settings.warehouse_conn_id))
    uses_s3 = feed.source.is_s3 or any(settings.area_root(a).startswith("s3://") for a in ("processed",))
    return FeedPipeline(
        feed,
        settings,
        warehouse,
        transformer=lambda_transformer(settings) if settings.transform == "lambda" else None,
        aws_conn_id=settings.aws_conn_id if uses_s3 else None,
    )
