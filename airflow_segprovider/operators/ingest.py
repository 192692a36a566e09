"""Load one declared source (files, a warehouse table, a REST API) into its model table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.operators.base import SegmentsBaseOperator, as_flag

if TYPE_CHECKING:
    from airflow.sdk import Context


class SegmentsIngestOperator(SegmentsBaseOperator):
    """Ingest ``source`` as declared in the project's ``sources:``: typed by the data model, upserted by key,
    bad rows quarantined with their reason, the load recorded for the freshness gate.

    :param source: the source's name.
    :param conn_id: Airflow connection with the API's base URL and credentials (REST sources).
    :param files_root: folder the file sources' relative paths start from (templated; default: the
        project folder). The example DAGs pass the landing folder ``segprovider land`` writes.
    :param allow_shrink: load a ``replace`` source even when it would empty its table or shrink it by more
        than the source's ``max_shrink_fraction`` (templated, e.g. ``"{{ params.allow_shrink }}"``).
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "source", "conn_id", "files_root",
                                      "allow_shrink")
    ui_color = "#fdebd0"

    def __init__(self, *, source: str, conn_id: str | None = None, files_root: str | None = None,
                 allow_shrink: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source = source
        self.conn_id = conn_id
        self.files_root = files_root
        self.allow_shrink = allow_shrink

    def execute_step(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_segprovider.ingest import ingest_source

        source = self.project.sources.get(self.source)
        if source is None:
            raise AirflowFailException(f"unknown source {self.source!r}; sources: {', '.join(self.project.sources)}")
        conn_id = self.conn_id or getattr(source, "connection_id", None)
        connection = None
        if conn_id:  # REST sources: resolved through Airflow, so connections stored in its database work too
            from airflow_segprovider.hooks.destination import connection_dict

            connection = connection_dict(conn_id)
        with self.warehouse() as warehouse:
            # with attribute history, the values loaded are valid from the run's as_of, which evaluates them
            valid_from = self.as_of_value() if self.project.model.customer.history is not None else None
            result = ingest_source(self.project, warehouse, self.source, connection=connection,
                                   files_root=self.files_root or None, allow_shrink=as_flag(self.allow_shrink),
                                   valid_from=valid_from)
        summary = result.to_dict()
        self.log.info("source %s: %s", self.source, summary)
        return summary
