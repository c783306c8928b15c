"""The `cloudwatch` sink: `PutMetricData` into namespace `feedline`, dimensions Feed / Task / State."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from feedline.metrics.model import Metric

log = logging.getLogger(__name__)

NAMESPACE = "feedline"
_BATCH = 1000  # PutMetricData's limit of metric data per request


class CloudWatchSink:
    """Sends metrics to CloudWatch. The client is built on first use: from the Airflow connection
    `aws_conn_id` when given (and Airflow is installed), else from boto3's default chain, which honours
    AWS_ENDPOINT_URL."""

    name = "cloudwatch"

    def __init__(self, *, client: Any = None, namespace: str = NAMESPACE, aws_conn_id: str | None = None):
        self.namespace = namespace
        self._client = client
        self._aws_conn_id = aws_conn_id

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        if self._aws_conn_id:
            try:
                from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
            except ImportError:
                log.debug("Airflow's Amazon provider is not installed; using boto3's default credentials")
            else:
                return AwsBaseHook(aws_conn_id=self._aws_conn_id, client_type="cloudwatch").get_conn()
        import boto3

        return boto3.session.Session().client("cloudwatch")

    def emit(self, metrics: Sequence[Metric]) -> None:
        data = [datum(m) for m in metrics]
        for start in range(0, len(data), _BATCH):
            self.client.put_metric_data(Namespace=self.namespace, MetricData=data[start : start + _BATCH])


def datum(metric: Metric) -> dict[str, Any]:
    """One `MetricData` entry; the timestamp is sent timezone-aware (UTC)."""
    ts = metric.ts if metric.ts.tzinfo else metric.ts.replace(tzinfo=UTC)
    return {
        "MetricName": metric.name,
        "Dimensions": [{"Name": k, "Value": v} for k, v in metric.series().items()],
        "Timestamp": ts,
        "Value": metric.value,
        "Unit": str(metric.unit),
    }
