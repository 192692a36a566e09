"""Erase people on request: the operator of a manual "forget" DAG (``segprovider forget`` in Airflow)."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.operators.base import SegmentsBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def customer_keys_value(value: Sequence[str] | str) -> list[str]:
    """The customer keys as given: a list, or rendered template text (a JSON or Python list, or keys
    separated by commas, spaces or new lines, e.g. ``{{ params.customers }}``)."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = ast.literal_eval(text)
            return [str(key).strip() for key in parsed if str(key).strip()]
        return [key for key in re.split(r"[,\s]+", text) if key]
    return [str(key).strip() for key in value if str(key).strip()]


class SegmentsForgetOperator(SegmentsBaseOperator):
    """Erase customers from every destination and every table the project keeps (``segprovider forget``).

    Each person is suppressed first (nothing sends them from then on), deleted for good at every sync's
    destination that holds them (Mailchimp permanent delete, HubSpot GDPR delete, Meta audience removal,
    webhook ``erase``), then deleted from every project table in one transaction, leaving a salted-hash
    tombstone (see :mod:`airflow_segprovider.core.privacy.erasure`). A destination that fails leaves the
    request pending and fails the attempt, so Airflow's retries finish it; the person stays suppressed meanwhile.
    The XCom result holds each request's outcome with the key's salted hash, never the key.

    :param customer_keys: the keys to forget (templated; a list, or text such as ``{{ params.customers }}``).
    :param salt_conn_id: an Airflow connection whose password is the project's privacy salt; None (default)
        reads the ``SEGPROVIDER_PRIVACY_SALT`` environment variable of the worker. Without a salt the task
        fails before anything is changed.
    """

    template_fields: Sequence[str] = (*SegmentsBaseOperator.template_fields, "customer_keys")
    ui_color = "#f6dbdb"

    def __init__(self, *, customer_keys: Sequence[str] | str, salt_conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.customer_keys = customer_keys
        self.salt_conn_id = salt_conn_id

    def _salt(self) -> str | None:
        import os

        from airflow_segprovider.core.state.privacy import SALT_ENV

        if self.salt_conn_id:
            from airflow.sdk import BaseHook

            return BaseHook.get_connection(self.salt_conn_id).password
        return os.environ.get(SALT_ENV)

    def execute_step(self, context: Context) -> list[dict[str, Any]]:
        from airflow_segprovider.core.errors import TransientError
        from airflow_segprovider.core.privacy import check_salt, forget
        from airflow_segprovider.destinations.spokes import push_overrides
        from airflow_segprovider.hooks.destination import hook_for_destination

        salt = check_salt(self._salt())
        keys = customer_keys_value(self.customer_keys)
        project = self.project

        def client(sync: Any) -> Any:  # a hub push's connector needs the push's own settings
            hook = hook_for_destination(project.destinations[sync.destination])
            return hook.get_client(project, sync, push_overrides(project, sync))

        with self.warehouse() as warehouse:
            results = forget(project, warehouse, keys, clients=client, salt=salt,
                             requested_by=f"airflow:{context['run_id']}")
        for result in results:  # logged by request id and hash: the keys stay out of the task log
            self.log.info("erasure %s (key hash %s…): %s; %s", result.request_id, result.key_hash[:12], result.status,
                          ", ".join(f"{o.destination}: {o.status}" for o in result.destinations) or "no destination")
        pending = [r for r in results if r.status == "pending"]
        if pending:
            failed = sorted({f"{o.destination} ({o.detail})" for r in pending for o in r.destinations
                             if o.status == "failed"})
            raise TransientError(f"{len(pending)} of {len(results)} erasures are pending (the people stay suppressed); "
                                 f"failed: {'; '.join(failed)}. A retry finishes them")
        return [result.to_dict() for result in results]
