"""Alert on a failed gate or sync: which expectations failed, with what observed values, where.

The notifier posts a JSON alert to a webhook through the project's one HTTP layer
by default. When the alert connection is a Slack (``slackwebhook``) or SMTP
connection, it uses those Airflow providers instead (installed as extras).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_ALERT_CONN_ID = "segprovider_alerts"


def build_alert(context: Context) -> dict[str, Any]:
    """The alert's content: DAG, run, task, try, the error, and the failed gate's expectations."""
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    exception = context.get("exception")
    gate = None
    if ti is not None:
        try:
            gate = ti.xcom_pull(task_ids=ti.task_id, key="gate_result")
        except Exception:  # noqa: BLE001 - an alert must go out even when XCom is unreachable
            gate = None
    failed = [
        {"expectation": f.get("expectation_type"), "column": f.get("column"),
         # aggregate expectations measure one value; per-row ones name the offending rows
         "observed": f.get("observed_value") if f.get("observed_value") is not None
         else (f.get("unexpected_rows") or f.get("unexpected_values")),
         "expected": f.get("kwargs"), "notes": f.get("notes")}
        for f in (gate or {}).get("failed", [])
    ]
    return {
        "source": "airflow-segprovider",
        "dag_id": getattr(dag_run, "dag_id", None) or getattr(ti, "dag_id", None),
        "run_id": getattr(dag_run, "run_id", None) or context.get("run_id"),
        "task_id": getattr(ti, "task_id", None),
        "map_index": getattr(ti, "map_index", None),
        "try_number": getattr(ti, "try_number", None),
        "logical_date": str(context.get("logical_date")),
        "error": str(exception) if exception else None,
        "gate": (gate or {}).get("gate"),
        "failed_expectations": failed,
        "log_url": getattr(ti, "log_url", None),
    }


def alert_text(alert: dict[str, Any]) -> str:
    lines = [f":rotating_light: segments {alert['dag_id']} / {alert['task_id']} failed (run {alert['run_id']})"]
    if alert["gate"]:
        lines.append(f"gate {alert['gate']}: {len(alert['failed_expectations'])} failed expectation(s)")
        for failed in alert["failed_expectations"]:
            column = f" on {failed['column']}" if failed["column"] else ""
            lines.append(f"  - {failed['expectation']}{column}: observed {failed['observed']!r}")
    if alert["error"]:
        lines.append(alert["error"][:3000])
    if alert["log_url"]:
        lines.append(f"log: {alert['log_url']}")
    return "\n".join(lines)


class SegproviderNotifier(BaseNotifier):
    """Send an alert for a failed task of a segments DAG.

    :param conn_id: alert connection: an ``http`` connection (host = webhook URL, optional password
        sent as a bearer token, optional extra ``signing_secret``: the body is then signed with
        ``X-Segprovider-Signature: sha256=<HMAC-SHA256>``, as the webhook destination signs its
        batches), a ``slackwebhook`` connection, or an ``smtp`` connection.
    :param to: recipients for SMTP alerts.
    """

    template_fields: Sequence[str] = ("conn_id", "to")

    def __init__(self, *, conn_id: str = DEFAULT_ALERT_CONN_ID, to: Sequence[str] | str = ()) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.to = to

    def notify(self, context: Context) -> None:
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        alert = build_alert(context)
        try:
            connection = BaseHook.get_connection(self.conn_id)
        except AirflowNotFoundException:
            self.log.warning("no alert connection %r: alert not sent: %s", self.conn_id, alert_text(alert))
            return
        conn_type = (connection.conn_type or "").lower()
        if conn_type in ("slackwebhook", "slack_webhook"):
            from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

            SlackWebhookHook(slack_webhook_conn_id=self.conn_id).send_text(alert_text(alert))
        elif conn_type in ("smtp", "email"):
            from airflow.providers.smtp.hooks.smtp import SmtpHook

            recipients = [self.to] if isinstance(self.to, str) else list(self.to)
            with SmtpHook(smtp_conn_id=self.conn_id) as smtp:
                smtp.send_email_smtp(to=recipients, subject=alert_text(alert).splitlines()[0],
                                     html_content=f"<pre>{alert_text(alert)}</pre>")
        else:
            self._post_webhook(connection, alert)

    def _post_webhook(self, connection: Any, alert: dict[str, Any]) -> None:
        from airflow_segprovider.destinations.http import Auth, BearerAuth, DestinationHttpClient, HttpSettings
        from airflow_segprovider.destinations.webhook import SIGNATURE_HEADER, sign_body

        url = connection.host or ""
        if not url.startswith(("http://", "https://")):
            url = f"{connection.schema or 'https'}://{url}"
        if connection.port:
            scheme, rest = url.split("://", 1)
            host, _, path = rest.partition("/")
            url = f"{scheme}://{host}:{connection.port}/{path}"
        auth = BearerAuth(connection.password) if connection.password else Auth()
        body = json.dumps(alert, default=str).encode()
        headers = {"Content-Type": "application/json"}
        secret = (connection.extra_dejson or {}).get("signing_secret")
        if secret:  # the same signature the webhook destination sends, so one receiver verifies both
            headers[SIGNATURE_HEADER] = sign_body(str(secret), body)
        with DestinationHttpClient(destination=f"alerts ({self.conn_id})",
                                   settings=HttpSettings(base_url=url, max_attempts=3, backoff_base=0.5),
                                   auth=auth) as client:
            client.request("POST", "", content=body, headers=headers, operation="post alert")
        self.log.info("alert sent to %s", self.conn_id)
