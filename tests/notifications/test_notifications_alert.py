"""The alert notifier delivers a failed gate's expectations over each configured channel, on loopback."""

from __future__ import annotations

import email
import json
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_segprovider.notifications.alert import SegproviderNotifier

pytestmark = pytest.mark.integration

GATE_RESULT = {
    "gate": "types", "success": False,
    "failed": [{"expectation_type": "expect_column_values_to_be_in_set", "column": "observed_family",
                "kwargs": {"value_set": ["number"]}, "observed_value": None,
                "unexpected_rows": [{"column": "lifetime_value", "observed_family": "string"}], "notes": ""}],
}


class _TaskInstance(SimpleNamespace):
    def xcom_pull(self, task_ids: str, key: str) -> Any:
        return GATE_RESULT if key == "gate_result" else None


def context() -> dict[str, Any]:
    ti = _TaskInstance(task_id="gate_types", dag_id="segments_centralized", map_index=-1, try_number=1,
                       log_url="http://airflow/log")
    return {"ti": ti, "dag_run": SimpleNamespace(dag_id="segments_centralized", run_id="manual__1"),
            "exception": RuntimeError("gate types failed"), "logical_date": "2026-11-24"}


@pytest.fixture
def http_receiver():
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_webhook_alert_carries_the_failed_expectation_and_the_observed_value(http_receiver, monkeypatch):
    url, received = http_receiver
    monkeypatch.setenv("AIRFLOW_CONN_SEGPROVIDER_ALERTS", json.dumps({"conn_type": "http", "host": f"{url}/hook"}))
    SegproviderNotifier().notify(context())
    [(path, body)] = received
    alert = json.loads(body)
    assert path == "/hook"
    assert (alert["dag_id"], alert["task_id"], alert["gate"]) == ("segments_centralized", "gate_types", "types")
    assert alert["failed_expectations"][0]["observed"] == [{"column": "lifetime_value", "observed_family": "string"}]


def test_slack_alert_goes_through_the_slack_provider(http_receiver, monkeypatch):
    url, received = http_receiver
    monkeypatch.setenv("AIRFLOW_CONN_SEGPROVIDER_ALERTS", json.dumps(
        {"conn_type": "slackwebhook", "password": f"{url}/services/T000/B000/XXXX"}))
    SegproviderNotifier().notify(context())
    [(path, body)] = received
    assert path == "/services/T000/B000/XXXX"
    text = json.loads(body)["text"]
    assert "gate types: 1 failed expectation" in text and "lifetime_value" in text


def test_smtp_alert_goes_through_the_smtp_provider(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import asyncore
        import smtpd

    messages: list[tuple[str, list[str], str]] = []

    class Receiver(smtpd.SMTPServer):
        def process_message(self, peer, mailfrom, rcpttos, data, **kwargs):  # noqa: ANN001
            messages.append((mailfrom, rcpttos, data.decode() if isinstance(data, bytes) else data))

    server = Receiver(("127.0.0.1", 0), None, decode_data=False)
    port = server.socket.getsockname()[1]
    loop = threading.Thread(target=asyncore.loop, kwargs={"timeout": 0.05, "count": 200}, daemon=True)
    loop.start()
    monkeypatch.setenv("AIRFLOW_CONN_SEGPROVIDER_ALERTS", json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": port,
         "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@example.org"}}))
    try:
        SegproviderNotifier(to=["data-eng@example.org"]).notify(context())
    finally:
        server.close()
        loop.join(timeout=15)
    [(sender, recipients, data)] = messages
    assert sender == "airflow@example.org" and recipients == ["data-eng@example.org"]
    message = email.message_from_string(data)
    body = "".join(part.get_payload(decode=True).decode() for part in message.walk()
                   if part.get_content_maintype() == "text")
    assert "gate_types failed" in message["Subject"]
    assert "gate types: 1 failed expectation" in body and "lifetime_value" in body


def test_a_webhook_alert_is_signed_when_the_connection_has_a_secret_and_a_verifying_receiver_accepts_it(
        tmp_path, monkeypatch):
    # The sandbox's webhook receiver answers 401 to a body without a valid X-Segprovider-Signature,
    # as a receiver that verifies the project's webhook signature does.
    from segprovider_sandbox import DEFAULT_WEBHOOK_SECRET, serve

    with serve(db_path=tmp_path / "sandbox.db") as sandbox:
        alerts = f"{sandbox.url}/webhook/alerts"
        monkeypatch.setenv("AIRFLOW_CONN_SEGPROVIDER_ALERTS", json.dumps({"conn_type": "http", "host": alerts}))
        with pytest.raises(Exception, match="401"):  # unsigned: refused, and the notifier says so
            SegproviderNotifier().notify(context())
        monkeypatch.setenv("AIRFLOW_CONN_SEGPROVIDER_ALERTS", json.dumps(
            {"conn_type": "http", "host": alerts, "extra": {"signing_secret": DEFAULT_WEBHOOK_SECRET}}))
        SegproviderNotifier().notify(context())
        [batch] = sandbox.state.webhook_batches("alerts")
    assert (batch["dag_id"], batch["gate"]) == ("segments_centralized", "types")
    assert batch["failed_expectations"][0]["observed"] == [{"column": "lifetime_value", "observed_family": "string"}]
