"""Airflow DAGs for every valid feed in the feeds folder (FEEDLINE_FEEDS, default ./feeds)."""

from feedline.airflow.dag_factory import build_dags

globals().update(build_dags())
