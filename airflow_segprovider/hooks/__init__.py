"""Airflow hooks: one per destination connection type, and the warehouse hook.

Import the submodules you need; this package imports nothing, so provider
discovery (which reads :mod:`.connection_form`) does not pull in Airflow.
"""
