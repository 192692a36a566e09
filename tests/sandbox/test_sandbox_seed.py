"""A seeded sandbox holds every object the example project uses, asked over HTTP as a client would.

The objects are derived from the example project's YAML (destinations, syncs and their targets,
field mappings, the hub's attribute pushes), not listed here, so an addition to the example that
the seed forgets fails this test. Spoke segments are the exception: the hybrid model deploys them
with their rules (``deploy_spoke_segment``), so the seed leaves them to it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_segprovider.cli.sandbox import sandbox_process
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.example import EXAMPLE_PROJECT
from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN, DEFAULT_MAILCHIMP_API_KEY, DEFAULT_META_ACCESS_TOKEN, serve
from segprovider_sandbox.admin import main as admin_main

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from airflow_segprovider.core.project.spec import Project

#: Target and config keys that name no object of their own (the audience is checked through ``list_id``).
SETTINGS_KEYS = {"membership"}


@dataclass
class Required:
    """What the example project needs each vendor to hold, by where it is found."""

    mailchimp_audiences: set[str] = field(default_factory=set)
    mailchimp_merge_fields: set[tuple[str, str]] = field(default_factory=set)  # (audience, tag)
    mailchimp_segments: set[tuple[str, str]] = field(default_factory=set)  # (audience, name)
    mailchimp_segment_ids: set[tuple[str, str]] = field(default_factory=set)  # (audience, id)
    hubspot_lists: set[str] = field(default_factory=set)
    hubspot_list_names: set[str] = field(default_factory=set)
    hubspot_properties: set[str] = field(default_factory=set)
    meta_audiences: set[tuple[str, str]] = field(default_factory=set)  # (audience id, ad account)


def required_objects(project: Project) -> Required:
    """Every list, audience, segment, merge field and property the project's syncs and hub pushes use."""
    need = Required()
    pushed = {name: dict(push.fields) for name, push in (project.hub.push.items() if project.hub else ())}
    used = {sync.destination for sync in project.syncs} | set(pushed)
    for name in sorted(used):
        destination = project.destinations[name]
        fields = set(destination.field_mapping) | set(pushed.get(name, {}))
        if destination.kind == "mailchimp":
            audience = str(destination.config["list_id"])
            need.mailchimp_audiences.add(audience)
            need.mailchimp_merge_fields |= {(audience, tag.upper()) for tag in fields}
        elif destination.kind == "hubspot":
            need.hubspot_properties |= fields
        elif destination.kind != "meta" or fields:
            pytest.fail(f"destination {name}: this test does not know what a {destination.kind} destination with "
                        f"fields {sorted(fields)} needs in the sandbox; teach required_objects")
    for sync in project.syncs:
        destination = project.destinations[sync.destination]
        target = {**destination.config, **sync.target}
        for key, value in target.items():
            value = str(value)
            if key in SETTINGS_KEYS or (destination.kind == "mailchimp" and key == "list_id"):
                continue
            if destination.kind == "mailchimp" and key in ("segment_name", "tag"):
                need.mailchimp_segments.add((str(target["list_id"]), value))
            elif destination.kind == "mailchimp" and key == "segment_id":
                need.mailchimp_segment_ids.add((str(target["list_id"]), value))
            elif destination.kind == "hubspot" and key == "list_id":
                need.hubspot_lists.add(value)
            elif destination.kind == "hubspot" and key == "list_name":
                need.hubspot_list_names.add(value)
            elif destination.kind == "meta" and key == "audience_id":
                need.meta_audiences.add((value, str(target["ad_account_id"]).removeprefix("act_")))
            elif not (destination.kind == "meta" and key == "ad_account_id"):
                pytest.fail(f"sync {sync.segment} -> {sync.destination}: this test does not know what target key "
                            f"{key!r} needs in the sandbox; teach required_objects")
    return need


def test_the_derivation_finds_what_the_example_project_is_known_to_use() -> None:
    """A guard on the derivation itself: it sees the objects the issue named (the high_intent audience included)."""
    need = required_objects(load_project(EXAMPLE_PROJECT))
    assert ("23850000000000002", "1234567890") in need.meta_audiences
    assert {("a1b2c3d4e5", "vip"), ("a1b2c3d4e5", "at_risk")} <= need.mailchimp_segments
    assert {"101", "102"} <= need.hubspot_lists
    assert ("a1b2c3d4e5", "LASTBUY") in need.mailchimp_merge_fields
    assert "last_purchase_date" in need.hubspot_properties


@contextlib.contextmanager
def _served_with_seed_flag(db: Path) -> Iterator[str]:
    with sandbox_process(db, seed=True) as sandbox:  # `python -m segprovider_sandbox --seed`, as compose runs it
        yield sandbox.url


@contextlib.contextmanager
def _seeded_by_operation(db: Path) -> Iterator[str]:
    assert admin_main(["seed", "--db", str(db)]) == 0  # `segprovider sandbox seed --db FILE`
    with serve(db_path=db) as running:
        yield running.url


@pytest.mark.parametrize("seeded", [_served_with_seed_flag, _seeded_by_operation], ids=["--seed", "seed-operation"])
def test_a_seeded_sandbox_serves_everything_the_example_project_uses(seeded: Any, tmp_path: Path) -> None:
    need = required_objects(load_project(EXAMPLE_PROJECT))
    with seeded(tmp_path / "sandbox.db") as url, requests.Session() as http:
        missing = _missing(http, url, need)
    assert not missing, "the seed leaves out what the example project uses:\n" + "\n".join(missing)


def _missing(http: requests.Session, url: str, need: Required) -> list[str]:
    missing: list[str] = []
    mailchimp = {"auth": ("segprovider", DEFAULT_MAILCHIMP_API_KEY), "timeout": 10}
    for audience in sorted(need.mailchimp_audiences):
        answer = http.get(f"{url}/3.0/lists/{audience}", **mailchimp)
        if answer.status_code != 200:
            missing.append(f"Mailchimp audience {audience} ({answer.status_code} {answer.text[:200]})")
            continue
        fields = http.get(f"{url}/3.0/lists/{audience}/merge-fields", params={"count": 1000}, **mailchimp).json()
        tags = {item["tag"] for item in fields["merge_fields"]}
        missing += [f"Mailchimp merge field {tag} of {audience}" for a, tag in sorted(need.mailchimp_merge_fields)
                    if a == audience and tag not in tags]
        segments = http.get(f"{url}/3.0/lists/{audience}/segments", params={"type": "static", "count": 1000},
                            **mailchimp).json()["segments"]
        missing += [f"Mailchimp static segment {name!r} of {audience}" for a, name in sorted(need.mailchimp_segments)
                    if a == audience and name not in {segment["name"] for segment in segments}]
        missing += [f"Mailchimp segment {sid} of {audience}" for a, sid in sorted(need.mailchimp_segment_ids)
                    if a == audience and sid not in {str(segment["id"]) for segment in segments}]
    hubspot = {"headers": {"Authorization": f"Bearer {DEFAULT_HUBSPOT_TOKEN}"}, "timeout": 10}
    for list_id in sorted(need.hubspot_lists):
        answer = http.get(f"{url}/crm/v3/lists/{list_id}", **hubspot)
        if answer.status_code != 200 or answer.json()["list"]["processingType"] != "MANUAL":
            missing.append(f"HubSpot MANUAL list {list_id}")
    for name in sorted(need.hubspot_list_names):
        if http.get(f"{url}/crm/v3/lists/object-type-id/0-1/name/{name}", **hubspot).status_code != 200:
            missing.append(f"HubSpot list named {name!r}")
    properties = {item["name"] for item in http.get(f"{url}/crm/v3/properties/contacts", **hubspot).json()["results"]}
    missing += [f"HubSpot contact property {name}" for name in sorted(need.hubspot_properties - properties)]
    for audience, account in sorted(need.meta_audiences):
        answer = http.get(f"{url}/v21.0/{audience}", timeout=10,
                          params={"fields": "id,account_id", "access_token": DEFAULT_META_ACCESS_TOKEN})
        if answer.status_code != 200 or answer.json()["account_id"] != account:
            missing.append(f"Meta custom audience {audience} in ad account act_{account}")
    return missing
