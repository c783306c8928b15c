"""The feeds dashboard served inside the Airflow UI: a FastAPI app, its data and static page."""
