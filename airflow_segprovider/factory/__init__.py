"""A declarative segments project turned into Airflow DAGs, one module per model.

:mod:`.skeleton` holds what every segments DAG shares; :mod:`.centralized`, :mod:`.distributed`,
:mod:`.hybrid` and :mod:`.monitor` (the drift monitor of every model) build one DAG each. Building
reads only the project's files, never a connection or a Variable.
"""
