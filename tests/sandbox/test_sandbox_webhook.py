"""The sandbox's signed webhook receiver, over real HTTP."""

from __future__ import annotations

import json

from segprovider_sandbox import DEFAULT_WEBHOOK_SECRET, sign


def test_a_correctly_signed_batch_is_recorded(sandbox, http):
    body = json.dumps({"action": "add", "records": [{"email": "a@example.org"}, {"email": "b@example.org"}]}).encode()
    response = http.post(
        f"{sandbox.url}/webhook/crm_hook",
        data=body,
        headers={"Content-Type": "application/json", "X-Segprovider-Signature": sign(body, DEFAULT_WEBHOOK_SECRET)},
    )
    assert response.status_code == 200 and response.json()["records"] == 2
    assert sandbox.state.webhook_batches("crm_hook") == [json.loads(body)]


def test_a_wrong_or_missing_signature_is_401_and_not_recorded(sandbox, http):
    body = json.dumps([{"email": "a@example.org"}]).encode()
    tampered = body.replace(b"a@", b"b@")
    for headers in (
        {},
        {"X-Segprovider-Signature": sign(body, "another-secret")},
        {"X-Segprovider-Signature": sign(body, DEFAULT_WEBHOOK_SECRET)},  # signature of a different body
    ):
        response = http.post(f"{sandbox.url}/webhook/crm_hook", data=tampered, headers=headers)
        assert response.status_code == 401
    assert sandbox.state.webhook_batches("crm_hook") == []
    assert [r.status for r in sandbox.state.requests("webhook")] == [401, 401, 401]
