"""Destination hooks on real Airflow connections, against the vendor sandbox."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

import pytest
from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_segprovider.core.destination import DestinationAuthError, DestinationConfigError
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.hooks.destination import (
    HOOKS_BY_KIND,
    MailchimpHook,
    MetaAdsHook,
    WebhookHook,
    connection_dict,
    connection_to_dict,
    hook_for_destination,
)
from tests.hooks.conftest import sandbox_connection

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from segprovider_sandbox import RunningSandbox

pytestmark = pytest.mark.integration

KINDS = sorted(HOOKS_BY_KIND)
WRONG_SECRET = "wrong-secret-4f1c9a7e2b"


def define_for(kind: str, sandbox: RunningSandbox, define: Callable[..., Connection], *,
               secret: str | None = None, conn_id: str | None = None) -> str:
    hook = HOOKS_BY_KIND[kind]
    conn_id = conn_id or f"test_{kind}"
    define(conn_id, hook.conn_type, **sandbox_connection(kind, sandbox, secret=secret))
    return conn_id


@pytest.mark.parametrize("kind", KINDS)
def test_test_connection_passes_with_good_credentials(kind: str, sandbox: RunningSandbox,
                                                      define_connection: Callable[..., Connection]) -> None:
    conn_id = define_for(kind, sandbox, define_connection)

    ok, message = HOOKS_BY_KIND[kind](conn_id).test_connection()

    assert ok, message
    assert f"connection '{conn_id}'" in message


@pytest.mark.parametrize("kind", KINDS)
def test_test_connection_fails_with_a_wrong_secret_naming_the_connection(
        kind: str, sandbox: RunningSandbox, define_connection: Callable[..., Connection]) -> None:
    conn_id = define_for(kind, sandbox, define_connection, secret=WRONG_SECRET)

    ok, message = HOOKS_BY_KIND[kind](conn_id).test_connection()

    assert not ok
    assert f"connection '{conn_id}'" in message
    # Mailchimp, HubSpot and the webhook answer 401; Meta answers 400 with OAuth error 190
    assert any(cue in message for cue in ("HTTP 401", "HTTP 403", "Invalid OAuth access token")), message
    assert WRONG_SECRET not in message


def test_test_connection_says_which_target_field_to_set(sandbox: RunningSandbox,
                                                        define_connection: Callable[..., Connection]) -> None:
    define_connection("mc_no_target", "segprovider_mailchimp", host=f"{sandbox.url}/3.0", password="k-us1")

    ok, message = MailchimpHook("mc_no_target").test_connection()

    assert not ok
    assert "connection 'mc_no_target'" in message
    assert "list_id" in message and "extra" in message, message


def test_test_connection_names_a_missing_credential(sandbox: RunningSandbox,
                                                    define_connection: Callable[..., Connection]) -> None:
    define_connection("mc_no_key", "segprovider_mailchimp", host=f"{sandbox.url}/3.0", extra={"list_id": "x"})

    ok, message = MailchimpHook("mc_no_key").test_connection()

    assert not ok
    assert "connection 'mc_no_key'" in message
    assert "API key" in message and "password" in message, message


def test_test_connection_of_an_undefined_connection() -> None:
    ok, message = WebhookHook("segprovider_no_such_connection").test_connection()

    assert (ok, message) == (False, "connection 'segprovider_no_such_connection' is not defined")


@pytest.mark.parametrize("kind", KINDS)
def test_hooks_do_not_look_up_their_connection_until_used(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    lookups: list[str] = []
    real_get_connection = BaseHook.get_connection.__func__

    def counting_get_connection(cls: type[BaseHook], conn_id: str) -> Connection:
        lookups.append(conn_id)
        return real_get_connection(cls, conn_id)

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(counting_get_connection))

    hook = HOOKS_BY_KIND[kind]("segprovider_no_such_connection")
    assert lookups == []

    with pytest.raises(AirflowNotFoundException, match="segprovider_no_such_connection"):
        hook.get_conn()
    assert lookups == ["segprovider_no_such_connection"]


def test_get_client_builds_the_sync_client_from_project_and_connection(
        sandbox: RunningSandbox, define_connection: Callable[..., Connection], example_project: Path) -> None:
    project = load_project(example_project)
    sync = next(s for s in project.syncs if s.destination == "mailchimp_newsletter" and s.segment == "vip")
    destination = project.destinations[sync.destination]
    # the connection holds only what a deployment puts there: where and with what key
    define_connection(destination.connection_id, "segprovider_mailchimp", host=f"{sandbox.url}/3.0",
                      password=sandbox_connection("mailchimp", sandbox)["password"])

    hook = hook_for_destination(destination)
    assert isinstance(hook, MailchimpHook) and hook.conn_id == destination.connection_id
    with hook.get_client(project, sync) as client:
        client.check()  # the project's list_id and the sync's segment_name, with the connection's key
        assert client.member_count() == 0
        assert client.name == destination.name


def test_get_client_refuses_a_sync_of_another_kind(example_project: Path) -> None:
    project = load_project(example_project)
    hubspot_sync = next(s for s in project.syncs if project.destinations[s.destination].kind == "hubspot")

    with pytest.raises(DestinationConfigError, match="MailchimpHook builds mailchimp clients"):
        MailchimpHook("never_looked_up").get_client(project, hubspot_sync)


def test_a_wrong_key_fails_the_sync_client_as_an_auth_error(
        sandbox: RunningSandbox, define_connection: Callable[..., Connection], example_project: Path) -> None:
    project = load_project(example_project)
    sync = next(s for s in project.syncs if s.destination == "mailchimp_newsletter")
    define_connection("other_mailchimp", "segprovider_mailchimp", host=f"{sandbox.url}/3.0", password=WRONG_SECRET)

    with MailchimpHook("other_mailchimp").get_client(project, sync) as client, \
            pytest.raises(DestinationAuthError) as failure:
        client.check()
    # the hint names the connection the hook read, not the one the project declares
    assert "other_mailchimp" in str(failure.value)
    assert WRONG_SECRET not in str(failure.value)


@pytest.mark.parametrize("kind", KINDS)
def test_secrets_never_reach_the_logs(kind: str, sandbox: RunningSandbox,
                                      define_connection: Callable[..., Connection],
                                      caplog: pytest.LogCaptureFixture) -> None:
    secret_extras: dict[str, Any] = {"meta": {"app_secret": "meta-app-secret-9d8e7f"},
                                     "webhook": {"auth_token": "webhook-bearer-1a2b3c"}}.get(kind, {})
    good = define_for(kind, sandbox, define_connection)
    bad = define_for(kind, sandbox, define_connection, secret=WRONG_SECRET, conn_id=f"bad_{kind}")
    fields = sandbox_connection(kind, sandbox)
    define_connection(f"extras_{kind}", HOOKS_BY_KIND[kind].conn_type, host=fields["host"],
                      password=fields["password"], extra={**fields["extra"], **secret_extras})
    caplog.set_level(logging.DEBUG)

    for conn_id in (good, bad, f"extras_{kind}"):
        hook = HOOKS_BY_KIND[kind](conn_id)
        hook.test_connection()
        with hook.get_conn() as client, contextlib.suppress(DestinationAuthError):
            client.check()

    # the sandbox plays the vendor: its access log is the far side of the wire, not ours
    ours = [record for record in caplog.records if not record.name.startswith("segprovider_sandbox")]
    assert any(record.name.startswith("airflow_segprovider") for record in ours), "nothing of ours was logged"
    logged = "\n".join(record.getMessage() for record in ours)
    for secret in (fields["password"], WRONG_SECRET, *secret_extras.values()):
        assert secret not in logged


def test_secrets_are_registered_with_airflows_masker(monkeypatch: pytest.MonkeyPatch,
                                                     define_connection: Callable[..., Connection]) -> None:
    masked: list[Any] = []
    monkeypatch.setattr("airflow_segprovider.hooks.destination.mask_secret", masked.append)
    define_connection("meta_masking", "segprovider_meta", password="meta-token-5e6f7a",
                      extra={"app_secret": "meta-app-secret-9d8e7f", "api_version": "v25.0"})

    MetaAdsHook("meta_masking").connection_dict()

    assert masked == ["meta-token-5e6f7a", "meta-app-secret-9d8e7f"]


def test_connection_dict_reads_the_fields_and_legacy_prefixed_extras(
        define_connection: Callable[..., Connection]) -> None:
    define_connection("meta_legacy", "segprovider_meta", host="https://graph.example", password="t0ken-abc",
                      extra={"extra__segprovider_meta__app_secret": "s3cret-xyz", "audience_id": "42",
                             "extra__segprovider_meta__api_version": "", "api_version": "v24.0"})

    fields = connection_dict("meta_legacy")

    assert fields["host"] == "https://graph.example"
    assert fields["password"] == "t0ken-abc"
    assert fields["extra"] == {"app_secret": "s3cret-xyz", "audience_id": "42", "api_version": "v24.0"}
    assert connection_to_dict(Connection(conn_id="x", conn_type="http"))["extra"] == {}


def test_airflows_own_connection_test_finds_the_hook(sandbox: RunningSandbox) -> None:
    # what the UI's "Test" button runs: Connection -> ProvidersManager -> hook class -> test_connection()
    fields = sandbox_connection("mailchimp", sandbox)
    connection = Connection(conn_id="ui_mailchimp", conn_type="segprovider_mailchimp", host=fields["host"],
                            password=fields["password"], extra=json.dumps(fields["extra"]))

    ok, message = connection.test_connection()

    assert ok, message
    assert "connection 'ui_mailchimp'" in message
