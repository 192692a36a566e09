"""Airflow operators: each runs one step of a segments flow on top of the pure core."""
