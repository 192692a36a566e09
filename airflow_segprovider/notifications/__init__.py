"""Airflow notifiers for failed gates and syncs."""
