"""The monitoring DAG: every hour, each feed's freshness, backlog, stuck files, reconciliation and
quarantine rate (see docs/monitoring.md)."""

from feedline.airflow.monitoring_dag import build_monitoring_dag

dag = build_monitoring_dag()
