"""The pure core of airflow-segprovider: no Airflow, no HTTP, nothing above it.

* :mod:`.errors` - every error is terminal or transient; spec issues in dbt's style;
* :mod:`.destination` - the destination contract the sync engine drives and connectors implement;
* :mod:`.project` - the segments language: spec, rule tree, loader and validation;
* :mod:`.evaluate` - SQL dialects, the compiler, evaluation, explain and describe;
* :mod:`.state` - every warehouse table the project keeps: its name and its DDL;
* :mod:`.sync` - the sync engine (plan, safety, execute, record);
* :mod:`.distributed` and :mod:`.hybrid` - the other two models;
* :mod:`.warehouses` - the warehouse interface and its DuckDB, PostgreSQL, Snowflake and BigQuery adapters.

Fast to test and usable from the ``segprovider`` CLI; ``tests/test_layout.py`` keeps Airflow out.
"""
