"""The Airflow layer: DAGs generated from feed contracts, the folder-watching trigger, thin tasks."""
