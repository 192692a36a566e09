"""Meta multi-key uploads: each key normalized by Meta's rules before SHA-256, sent as one schema, removed by the
same keys; against the sandbox, which matches on any identifier.

Rules: https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash
"""

from __future__ import annotations

import hashlib
import json

import pytest

from airflow_segprovider.core.destination import DestinationConfigError, Record
from airflow_segprovider.destinations import create_client
from airflow_segprovider.destinations.meta import MetaCustomAudienceClient, hashed_key, normalize_key
from segprovider_sandbox import DEFAULT_META_ACCESS_TOKEN, SandboxConfig, serve
from segprovider_sandbox.store.meta import hash_matches

FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 4}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("key", "value", "normalized"), [
    ("EMAIL", "  Ann.Lee@Example.COM ", "ann.lee@example.com"),
    ("PHONE", "+1 (650) 555-1212", "16505551212"),
    ("PHONE", "0049 30 1234567", "49301234567"),  # leading zeros go: the country code must lead
    ("FN", " Mary-Jane ", "maryjane"),
    ("FN", "Zoë", "zoë"),  # UTF-8 letters are kept
    ("LN", "O'Brien", "obrien"),
    ("FI", "mary", "m"),
    ("CT", "New York", "newyork"),
    ("ST", "CA", "ca"),
    ("ZIP", "94025-1234", "94025"),
    ("ZIP", "SW1A 1AA", "sw1a1aa"),
    ("COUNTRY", "US", "us"),
    ("COUNTRY", "United States", ""),  # not a two-letter code: left out rather than hashed wrong
    ("GEN", "Female", "f"),
    ("DOBY", "1984", "1984"),
    ("DOBM", "3", "03"),
    ("DOBM", "13", ""),
    ("DOBD", "07", "07"),
    ("EXTERN_ID", " crm-42 ", "crm-42"),
    ("MADID", "AECE52E7-03EE-455A-B3C4-E57283966239", "aece52e7-03ee-455a-b3c4-e57283966239"),
    ("PHONE", None, ""),
])
def test_each_key_is_normalized_by_metas_rule(key, value, normalized):
    assert normalize_key(key, value) == normalized


def test_hashed_keys_are_sha256_of_the_normalized_value_and_ids_are_sent_as_they_are():
    assert hashed_key("FN", " Ann ") == sha("ann") and hashed_key("COUNTRY", "DE") == sha("de")
    assert hashed_key("EXTERN_ID", "crm-42") == "crm-42" and hashed_key("PHONE", "") == ""
    assert hashed_key("PHONE", sha("16505551212")) == sha("16505551212")  # already hashed: passed through


def test_a_mapping_to_a_field_meta_does_not_have_is_refused_naming_it():
    with create_client("meta", "meta_ads", {"audience_id": "1"}, {"access_token": "t"}) as client:
        client.check_fields(["COUNTRY", "FN", "PHONE"])
        with pytest.raises(DestinationConfigError, match="field_mapping.PHONE_NUMBER is not a Meta match key") as bad:
            client.check_fields(["FN", "PHONE_NUMBER"])
        assert bad.value.field == "field_mapping.PHONE_NUMBER" and "EXTERN_ID" in str(bad.value)
        with pytest.raises(DestinationConfigError, match="destination's identity"):
            client.check_fields(["EMAIL"])


def people(n: int) -> list[Record]:
    return [Record(f"c{i}", f"Person{i}@Example.com",
                   {"PHONE": f"+49 30 {i:07d}", "FN": f"Ann{i}", "LN": "Lee", "ZIP": "10115", "COUNTRY": "DE",
                    "EXTERN_ID": f"crm-{i}"})
            for i in range(n)]


def uploaded(sandbox) -> list[dict]:
    bodies = [r.body for r in sandbox.state.requests("meta") if r.method in ("POST", "DELETE") and "/users" in r.path]
    from urllib.parse import parse_qs

    return [json.loads(parse_qs(body)["payload"][0]) for body in bodies]


@pytest.mark.integration
def test_a_multi_key_upload_matches_more_people_and_is_removed_by_the_same_keys(tmp_path):
    with serve(db_path=tmp_path / "sandbox.db", config=SandboxConfig(meta_match_rate=0.5)) as sandbox:
        audience = sandbox.state.seed_demo_fixtures().meta_audience_id
        config = {"audience_id": audience, "base_url": sandbox.url, **FAST_RETRIES}
        with create_client("meta", "meta_ads", config, {"access_token": DEFAULT_META_ACCESS_TOKEN}) as client:
            assert isinstance(client, MetaCustomAudienceClient)
            added = client.add_members(people(1000))
            match_rate = client.upload_sessions_summary()[0]
            [payload] = uploaded(sandbox)
            assert payload["schema"] == ["EMAIL", "PHONE", "FN", "LN", "ZIP", "COUNTRY", "EXTERN_ID"]
            row = dict(zip(payload["schema"], payload["data"][0]))
            assert row == {"EMAIL": sha("person0@example.com"), "PHONE": sha("49300000000"), "FN": sha("ann"),
                           "LN": sha("lee"), "ZIP": sha("10115"), "COUNTRY": sha("de"), "EXTERN_ID": "crm-0"}
            assert len(added.acknowledged) == 1000 and len(added.destination_ids) == 1000
            # email, phone, extern id and name-and-zip: four chances at 50 % each
            assert match_rate is not None and match_rate > 0.85
            removed = client.remove_members(people(1000), added.destination_ids)
            assert len(removed.acknowledged) == 1000
            assert uploaded(sandbox)[-1]["schema"] == payload["schema"]
        assert sandbox.state.meta_audience_hashes(audience) == set()


@pytest.mark.integration
def test_a_person_without_an_email_is_sent_on_their_other_keys_and_one_without_any_is_refused(tmp_path):
    with serve(db_path=tmp_path / "sandbox.db") as sandbox:
        audience = sandbox.state.seed_demo_fixtures().meta_audience_id
        config = {"audience_id": audience, "base_url": sandbox.url, **FAST_RETRIES}
        records = [Record("a", "not-an-email", {"PHONE": "+1 650 555 1212"}), Record("b", "", {"PHONE": ""})]
        with create_client("meta", "meta_ads", config, {"access_token": DEFAULT_META_ACCESS_TOKEN}) as client:
            result = client.add_members(records)
        [payload] = uploaded(sandbox)
    assert result.acknowledged == ["a"] and [r.code for r in result.rejected] == ["missing_identity"]
    assert payload["data"] == [["", sha("16505551212")]]


@pytest.mark.integration
def test_a_changed_match_key_replaces_the_uploaded_row_so_a_later_removal_leaves_no_old_key_behind(tmp_path):
    """Meta keeps a person matched by every row it received; a removal names one row
    (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#remove). When a member's
    phone changes, the sync's change sends the old row (their destination id) to :meth:`replace_members`, which
    deletes it before uploading the new one: after a removal by the new row, the old phone's hash is gone too."""
    rate = 0.7
    # someone Meta does not match by e-mail but by phone (the sandbox keeps a person under the first key that
    # matches, from the hash alone): the old phone is what Meta holds them by
    email = next(f"ann{i}@example.com" for i in range(1000) if not hash_matches(sha(f"ann{i}@example.com"), rate))
    phones = (f"4930{n:07d}" for n in range(10**6) if hash_matches(sha(f"4930{n:07d}"), rate))
    old, new = next(phones), next(phones)
    with serve(db_path=tmp_path / "sandbox.db", config=SandboxConfig(meta_match_rate=rate)) as sandbox:
        audience = sandbox.state.seed_demo_fixtures().meta_audience_id
        config = {"audience_id": audience, "base_url": sandbox.url, **FAST_RETRIES}
        with create_client("meta", "meta_ads", config, {"access_token": DEFAULT_META_ACCESS_TOKEN}) as client:
            added = client.add_members([Record("a", email, {"PHONE": f"+{old}"})])
            assert sandbox.state.meta_audience_hashes(audience) == {sha(old)}
            changed = client.replace_members([Record("a", email, {"PHONE": f"+{new}"})], added.destination_ids)
            held = sandbox.state.meta_audience_hashes(audience)
            assert changed.acknowledged == ["a"]
            assert json.loads(changed.destination_ids["a"])["PHONE"] == sha(new)
            assert held == {sha(new)}  # the old phone no longer matches them
            client.remove_members([Record("a", email, {"PHONE": f"+{new}"})], changed.destination_ids)
        assert sandbox.state.meta_audience_hashes(audience) == set()
        methods = [r.method for r in sandbox.state.requests("meta") if "/users" in r.path]
    assert methods == ["POST", "DELETE", "POST", "DELETE"]
