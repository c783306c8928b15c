"""Feed health: freshness, load latency, landing backlog, stuck files, reconciliation, quarantine rate.

Plain Python over a `FeedPipeline`, free of Airflow: `monitor_feed` runs the checks, alerts through a
sender it is given, and records the findings in `feedline_audit.monitoring`. The monitoring DAG
(`feedline.airflow.monitoring_dag`) runs it every hour for every feed.
"""

from feedline.monitoring.checks import run_checks
from feedline.monitoring.findings import CheckName, Finding, Status, worst
from feedline.monitoring.monitor import FeedReport, Sender, monitor_feed

__all__ = [
    "CheckName",
    "FeedReport",
    "Finding",
    "Sender",
    "Status",
    "monitor_feed",
    "run_checks",
    "worst",
]
