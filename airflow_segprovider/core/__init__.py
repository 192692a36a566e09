"""The pure core of airflow-segprovider.

Nothing in this package imports Airflow: the segment spec, its validation, the
SQL compiler, evaluation, the membership store and the sync engine are plain
Python, fast to test and usable from the ``segprovider`` CLI.
"""
