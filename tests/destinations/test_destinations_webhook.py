"""Webhook connector: signed batches, receiver refusals, idempotent retries."""

from __future__ import annotations

import pytest

from airflow_segprovider.core.destination import DestinationConfigError, Record, UnsupportedOperationError
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.webhook import (
    BATCH_ID_HEADER,
    SIGNATURE_HEADER,
    WebhookClient,
    sign_body,
    verify_signature,
)

SECRET = "whsec_5a5a5a5a5a5a5a5a"


def make(server, **config) -> WebhookClient:
    settings = {"url": f"{server.url}/hooks/segments", "backoff_base": 0.01}
    settings.update(config)
    client = create_client("webhook", "crm_hook", settings, {"signing_secret": SECRET})
    assert isinstance(client, WebhookClient)
    return client


def test_config_requires_url_and_secret():
    with pytest.raises(DestinationConfigError) as caught:
        create_client("webhook", "crm_hook", {}, {"signing_secret": SECRET})
    assert caught.value.field == "url"
    with pytest.raises(DestinationConfigError) as caught:
        create_client("webhook", "crm_hook", {"url": "http://127.0.0.1:1/x"}, {})
    assert caught.value.field == "signing_secret"
    with pytest.raises(DestinationConfigError) as caught:
        create_client(
            "webhook", "crm_hook", {"url": "http://127.0.0.1:1/x", "batch_size": 0}, {"signing_secret": SECRET}
        )
    assert caught.value.field == "batch_size"


def test_batches_are_signed_over_the_raw_body(server):
    R = server.Reply
    server.route("POST", "/hooks/segments", lambda seen, match: R(204))
    with make(server, batch_size=3) as client:
        result = client.add_members([Record(f"k{i}", f"p{i}@x.org", {"tier": "gold"}) for i in range(7)])
    assert len(server.requests) == 3
    for seen in server.requests:
        assert verify_signature(SECRET, seen.body, seen.headers[SIGNATURE_HEADER])
        assert not verify_signature(SECRET, seen.body + b" ", seen.headers[SIGNATURE_HEADER])
        assert not verify_signature("wrong", seen.body, seen.headers[SIGNATURE_HEADER])
        body = seen.json()
        assert body["action"] == "add" and body["destination"] == "crm_hook"
        assert seen.headers[BATCH_ID_HEADER] == body["batch_id"]
        assert SECRET.encode() not in seen.body
    assert [len(s.json()["records"]) for s in server.requests] == [3, 3, 1]
    assert server.requests[0].json()["records"][0] == {
        "key": "k0",
        "identity": "p0@x.org",
        "attributes": {"tier": "gold"},
    }
    assert result.acknowledged == [f"k{i}" for i in range(7)]


def test_signature_format():
    # RFC 4231 test case 2: HMAC-SHA256 of "what do ya want for nothing?" keyed by "Jefe".
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign_body("Jefe", b"what do ya want for nothing?") == f"sha256={expected}"
    assert not verify_signature("Jefe", b"{}", None)


def test_receiver_can_refuse_single_records(server):
    R = server.Reply
    server.route(
        "POST",
        "/hooks/segments",
        lambda seen, match: R(
            200,
            {
                "rejected": [
                    {"key": "k1", "code": "unknown_customer", "message": "no such customer"},
                    {"key": "not-in-batch", "code": "x"},
                ]
            },
        ),
    )
    with make(server) as client:
        result = client.upsert([Record("k0", "a@x.org"), Record("k1", "b@x.org")])
    assert result.acknowledged == ["k0"]
    assert [(r.key, r.code, r.message) for r in result.rejected] == [("k1", "unknown_customer", "no such customer")]


def test_non_json_success_acknowledges_everything(server):
    R = server.Reply
    server.route("POST", "/hooks/segments", lambda seen, match: R(200, b"OK", headers={"Content-Type": "text/plain"}))
    with make(server) as client:
        assert client.remove_members([Record("k0", "a@x.org")], {"k0": "ext-9"}).acknowledged == ["k0"]
    assert server.requests[0].json()["records"][0]["destination_id"] == "ext-9"
    assert server.requests[0].json()["action"] == "remove"


def test_a_retry_resends_the_same_bytes_and_batch_id(server):
    R = server.Reply
    server.queue(R(503))
    server.route("POST", "/hooks/segments", lambda seen, match: R(202))
    with make(server) as client:
        client.add_members([Record("k0", "a@x.org")])
    first, second = server.requests
    assert first.body == second.body
    assert first.headers[BATCH_ID_HEADER] == second.headers[BATCH_ID_HEADER]


def test_check_posts_an_empty_signed_batch(server):
    R = server.Reply
    server.route("POST", "/hooks/segments", lambda seen, match: R(200, {}))
    with make(server) as client:
        client.check()
        with pytest.raises(UnsupportedOperationError):
            list(client.iter_members())
        with pytest.raises(UnsupportedOperationError):
            client.member_count()
    [seen] = server.requests
    assert seen.json()["action"] == "check" and seen.json()["records"] == []
    assert verify_signature(SECRET, seen.body, seen.headers[SIGNATURE_HEADER])
    assert SECRET not in repr(client)
