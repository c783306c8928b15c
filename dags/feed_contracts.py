"""Surfaces invalid feed files as one Airflow DAG import error naming each file, field and fix.

Kept apart from feeds.py so that an invalid feed never stops the valid feeds' DAGs from loading.
"""

from feedline.airflow.dag_factory import raise_contract_errors

raise_contract_errors()
