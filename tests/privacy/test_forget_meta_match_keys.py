"""Erasure of a person a sync sent to Meta with several match keys: every row uploaded is deleted, in the upload's
schema, not only the row of their hashed e-mail. DuckDB warehouse, sandbox over loopback HTTP.

Meta may match, and keep, a person under any key of their row (the sandbox keeps the first identifier that
matched, see :mod:`segprovider_sandbox.meta`); a removal names the same rows with the same schema as the upload
(https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#remove). The sync state keeps
those hashed keys as the member's destination id, and the erasure passes them to
:meth:`~airflow_segprovider.destinations.meta.MetaCustomAudienceClient.erase`.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs

import pytest

from airflow_segprovider.core.privacy import forget
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.destinations.connection import build_client
from airflow_segprovider.destinations.meta import hashed_key, normalize_and_hash
from segprovider_sandbox.store.meta import hash_matches
from support.privacy_world import META_AUDIENCE, SALT
from support.sync_constants import DAY_2
from support.sync_runs import run, sync_of

pytestmark = pytest.mark.integration

#: the sandbox's default share of identifiers Meta matches (:class:`segprovider_sandbox.SandboxConfig`)
MATCH_RATE = 0.7
#: the example's Meta destination, sending the CRM id and the first name and country besides the e-mail
MULTI_KEY = """  - name: meta_ads
    kind: meta
    connection_id: segprovider_meta
    channel: ads
    identity: email
    field_mapping:
      EXTERN_ID: crm_id
      FN: first_name
      COUNTRY: country
"""


def extern_id_hash(value: str) -> str:
    """How the sandbox keeps an ``EXTERN_ID`` (sent unhashed) as an identifier: :func:`row_identifiers`."""
    return hashlib.sha256(f"EXTERN_ID:{value}".encode()).hexdigest()


def with_multi_key_meta(world) -> None:
    """The world's project, its Meta destination sending ``EXTERN_ID`` (the customer id), ``FN`` and ``COUNTRY``."""
    model = world.root / "model.yml"
    model.write_text(model.read_text().replace(
        "      first_name: {type: string}",
        "      first_name: {type: string}\n      crm_id: {type: number, column: customer_id}"))
    destinations = world.root / "destinations.yml"
    text = destinations.read_text()
    start = text.index("  - name: meta_ads")
    end = text.index("    description: Custom audiences", start)
    destinations.write_text(text[:start] + MULTI_KEY + text[end:])
    world.project = load_project(world.root)


def meta_payloads(world, method: str) -> list[dict]:
    return [json.loads(parse_qs(r["body"])["payload"][0]) for r in world.logged_requests("meta")
            if r["method"] == method and r["path"].endswith("/users")]


def test_a_person_synced_with_several_match_keys_is_gone_from_the_meta_audience_after_forget(world):
    with_multi_key_meta(world)
    sync = sync_of(world.project, "high_intent", "meta_ads")
    record = run(world.project, world.warehouse, world.connections, sync, DAY_2)
    assert record.succeeded["add"] > 0
    uploads = meta_payloads(world, "POST")
    assert {json.dumps(upload["schema"]) for upload in uploads} == {json.dumps(uploads[0]["schema"])}
    upload = uploads[0]
    assert upload["schema"] == ["EMAIL", "FN", "COUNTRY", "EXTERN_ID"]
    held = world.sandbox.state.meta_audience_hashes(META_AUDIENCE)
    rows = world.warehouse.query(
        "SELECT s.customer_key, s.identity, s.destination_id FROM segprovider_sync_state AS s "
        f"WHERE s.sync_id = '{sync.id}' AND s.in_destination ORDER BY s.customer_key")
    # someone Meta did not match by e-mail but by their CRM id: the audience keeps them under the id's hash only
    person, email, destination_id = next(
        (key, email, ids) for key, email, ids in rows
        if not hash_matches(normalize_and_hash(email), MATCH_RATE) and extern_id_hash(key) in held)
    assert json.loads(destination_id)["EXTERN_ID"] == hashed_key("EXTERN_ID", person)
    assert normalize_and_hash(email) not in held

    [result] = forget(world.project, world.warehouse, [person], salt=SALT, requested_by="test",
                      clients=lambda s: build_client(world.project, s, world.connections[s.destination]))

    assert result.status == "erased"
    held_after = world.sandbox.state.meta_audience_hashes(META_AUDIENCE)
    assert extern_id_hash(person) not in held_after and normalize_and_hash(email) not in held_after
    assert held - held_after == {extern_id_hash(person)}  # nobody else left the audience
    # deleted by the row it was uploaded as: the upload's schema, the same hashed keys
    [erased] = meta_payloads(world, "DELETE")
    assert erased["schema"] == upload["schema"]
    assert erased["data"] == [[json.loads(destination_id).get(key, "") for key in upload["schema"]]]


def test_a_changed_match_key_is_replaced_at_meta_and_forget_then_names_the_row_meta_holds(world):
    """A member's first name changes: the sync's change deletes the row uploaded before (the state's destination id)
    and uploads the new one, and the state keeps the new row, which a later erasure names (a ``mirror`` sync: an
    ``add_only`` one sends no changes)."""
    with_multi_key_meta(world)
    destinations = world.root / "destinations.yml"
    text = destinations.read_text()
    assert "{segment: high_intent, destination: meta_ads, mode: add_only" in text
    destinations.write_text(text.replace("{segment: high_intent, destination: meta_ads, mode: add_only",
                                         "{segment: high_intent, destination: meta_ads, mode: mirror"))
    world.project = load_project(world.root)
    sync = sync_of(world.project, "high_intent", "meta_ads")
    run(world.project, world.warehouse, world.connections, sync, DAY_2)
    person, before = world.warehouse.query(
        "SELECT customer_key, destination_id FROM segprovider_sync_state "
        f"WHERE sync_id = '{sync.id}' AND in_destination ORDER BY customer_key LIMIT 1")[0]
    world.warehouse.execute("UPDATE customers SET first_name = 'Renamed' "
                            f"WHERE CAST(customer_id AS VARCHAR) = '{person}'")

    record = run(world.project, world.warehouse, world.connections, sync, DAY_2)

    assert record.succeeded["change"] == 1
    [deleted] = meta_payloads(world, "DELETE")
    assert deleted["data"] == [[json.loads(before).get(key, "") for key in deleted["schema"]]]
    after = world.warehouse.query("SELECT destination_id FROM segprovider_sync_state "
                                  f"WHERE sync_id = '{sync.id}' AND customer_key = '{person}'")[0][0]
    assert json.loads(after)["FN"] == normalize_and_hash("renamed") != json.loads(before)["FN"]
