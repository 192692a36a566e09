"""Pass 3 of loading a project, one module per section: the semantic checks of schema-valid definitions.

Each check turns the :class:`~airflow_segprovider.core.project.items.ProjectItem` values of its
section into spec objects, reporting every problem where it is written. The rules of segments are
built by :mod:`airflow_segprovider.core.project.builder`; the hub, spoke segments and reconcile
policies are checked in :mod:`airflow_segprovider.core.project.hybrid` and
:mod:`airflow_segprovider.core.project.distributed`, next to their spec classes.
"""
