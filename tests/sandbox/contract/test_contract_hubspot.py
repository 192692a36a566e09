"""The sandbox's HubSpot, judged by HubSpot's official Python SDK (``hubspot-api-client`` 12.x).

The SDK runs with ``client_side_validation`` on, so every answer must deserialize into the SDK's models with their
required fields (a missing ``recordIdsMissing`` or ``startedAt`` fails the test); errors come back as the SDK's
``ApiException`` carrying HubSpot's error body.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from hubspot import Client
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)
from hubspot.crm.contacts.exceptions import ApiException as ContactsApiException
from hubspot.crm.lists import MembershipChangeRequest
from hubspot.crm.lists.exceptions import ApiException as ListsApiException
from hubspot.crm.properties import PropertyCreate
from hubspot.crm.properties.exceptions import ApiException as PropertiesApiException

from segprovider_sandbox import DEFAULT_HUBSPOT_TOKEN

if TYPE_CHECKING:
    from segprovider_sandbox import DemoFixtures, RunningSandbox


@pytest.fixture
def client(sandbox: RunningSandbox) -> Client:
    """The official client, pointed at the sandbox instead of ``https://api.hubapi.com``, validating answers."""
    return Client.create(access_token=DEFAULT_HUBSPOT_TOKEN, host=sandbox.url, client_side_validation=True)


def _upsert(client: Client, emails: list[str], **properties: str):
    inputs = [SimplePublicObjectBatchInputUpsert(id_property="email", id=email,
                                                 properties={"email": email, **properties})
              for email in emails]
    return client.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))


def test_batch_upsert_creates_then_updates(client):
    """https://developers.hubspot.com/docs/api/crm/contacts (Batch: create or update contacts by unique property)"""
    created = _upsert(client, ["ada@example.com", "bob@example.com"], firstname="Ada")
    assert created.status == "COMPLETE" and {r.new for r in created.results} == {True}
    assert created.started_at is not None and created.completed_at is not None
    updated = _upsert(client, ["ada@example.com"], lastname="Lovelace")
    assert updated.results[0].new is False
    assert updated.results[0].id == next(r.id for r in created.results if r.properties["email"] == "ada@example.com")


def test_batch_upsert_with_an_invalid_address_is_a_multi_status(client):
    """https://developers.hubspot.com/docs/api/error-handling (207 Multi-Status for partly failed batches)"""
    answer = _upsert(client, ["ok@example.com", "not-an-address"])
    assert answer.num_errors == 1 and answer.errors[0].category == "VALIDATION_ERROR"
    assert [r.properties["email"] for r in answer.results] == ["ok@example.com"]


def test_batch_create_update_and_read(client):
    """https://developers.hubspot.com/docs/api/crm/contacts (Batch: create, update and read contacts)"""
    batch = client.crm.contacts.batch_api
    created = batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        SimplePublicObjectBatchInputForCreate(properties={"email": "new@example.com", "firstname": "Nu"})]))
    contact_id = created.results[0].id
    updated = batch.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        SimplePublicObjectBatchInput(id=contact_id, properties={"lastname": "Er"})]))
    assert updated.results[0].properties["lastname"] == "Er"
    read = batch.read(BatchReadInputSimplePublicObjectId(
        id_property="email", inputs=[SimplePublicObjectId(id="new@example.com")],
        properties=["firstname", "lastname"], properties_with_history=[]))
    assert read.results[0].properties["firstname"] == "Nu" and read.results[0].properties["lastname"] == "Er"
    with pytest.raises(ContactsApiException) as raised:
        batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
            SimplePublicObjectBatchInputForCreate(properties={"email": "new@example.com"})]))
    assert raised.value.status == 409
    assert json.loads(raised.value.body)["category"] == "CONFLICT"


def test_list_get_and_memberships_add_remove_page(client, fixtures: DemoFixtures):
    """https://developers.hubspot.com/docs/api/crm/lists (get a list, add and remove records, fetch memberships)"""
    ids = sorted(r.id for r in _upsert(client, ["a@example.com", "b@example.com", "c@example.com"]).results)
    memberships = client.crm.lists.memberships_api
    added = memberships.add(fixtures.hubspot_list_id, request_body=[*ids, "999999"])
    assert sorted(added.records_ids_added) == ids and added.record_ids_missing == ["999999"]
    removed = memberships.remove(fixtures.hubspot_list_id, request_body=[ids[0]])
    assert removed.record_ids_removed == [ids[0]]
    both = memberships.add_and_remove(fixtures.hubspot_list_id, MembershipChangeRequest(
        record_ids_to_add=[ids[0]], record_ids_to_remove=[ids[1]]))
    assert both.records_ids_added == [ids[0]] and both.record_ids_removed == [ids[1]]
    page = memberships.get_page(fixtures.hubspot_list_id, limit=1)
    assert [m.record_id for m in page.results] == [ids[0]] and page.paging.next.after == ids[0]
    found = client.crm.lists.lists_api.get_by_id(fixtures.hubspot_list_id)
    assert found.list.list_id == fixtures.hubspot_list_id and found.list.size == 2
    assert found.list.processing_type == "MANUAL"
    with pytest.raises(ListsApiException) as raised:
        client.crm.lists.lists_api.get_by_id("424242")
    assert raised.value.status == 404
    assert json.loads(raised.value.body)["category"] == "OBJECT_NOT_FOUND"


def test_properties_get_all_get_one_and_create(client):
    """https://developers.hubspot.com/docs/api/crm/properties (read all, read one, create a property)"""
    properties = client.crm.properties.core_api
    names = {p.name for p in properties.get_all("contacts").results}
    assert {"email", "firstname", "lifetime_value"} <= names
    assert properties.get_by_name("contacts", "lifetime_value").type == "number"
    created = properties.create("contacts", PropertyCreate(
        name="favorite_color", label="Favorite color", type="string", field_type="text",
        group_name="contactinformation"))
    assert created.name == "favorite_color" and created.hubspot_defined is False
    assert properties.get_by_name("contacts", "favorite_color").label == "Favorite color"
    with pytest.raises(PropertiesApiException) as raised:
        properties.create("contacts", PropertyCreate(
            name="favorite_color", label="Again", type="string", field_type="text", group_name="contactinformation"))
    assert raised.value.status == 409
    with pytest.raises(PropertiesApiException) as raised:
        properties.get_by_name("contacts", "no_such_property")
    assert raised.value.status == 404


def test_a_bad_token_is_a_401_the_sdk_raises(sandbox):
    """https://developers.hubspot.com/docs/api/error-handling (401 INVALID_AUTHENTICATION)"""
    client = Client.create(access_token="pat-na1-wrong", host=sandbox.url)
    with pytest.raises(ListsApiException) as raised:
        client.crm.lists.lists_api.get_by_id("101")
    assert raised.value.status == 401
    assert json.loads(raised.value.body)["category"] == "INVALID_AUTHENTICATION"


def test_gdpr_delete_by_email_erases_the_contact_and_blocklists_an_unknown_address(client, sandbox, fixtures):
    """https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact
    (``POST /crm/v3/objects/contacts/gdpr-delete``, ``idProperty: email``: 204; an unknown address is blocklisted)"""
    from hubspot.crm.contacts import PublicGdprDeleteInput

    created = _upsert(client, ["erase-me@example.com"]).results[0]
    client.crm.lists.memberships_api.add_and_remove(
        fixtures.hubspot_list_id, MembershipChangeRequest(record_ids_to_add=[created.id], record_ids_to_remove=[]))
    assert client.crm.contacts.basic_api.purge(
        PublicGdprDeleteInput(object_id="Erase-Me@example.com", id_property="email")) is None
    with pytest.raises(ContactsApiException) as gone:
        client.crm.contacts.basic_api.get_by_id(created.id)
    assert gone.value.status == 404
    assert "erase-me@example.com" not in sandbox.state.hubspot_list_emails(fixtures.hubspot_list_id)
    # an address HubSpot never had: accepted too (HubSpot blocklists it); an unknown numeric id is a 404
    assert client.crm.contacts.basic_api.purge(
        PublicGdprDeleteInput(object_id="never-seen@example.com", id_property="email")) is None
    with pytest.raises(ContactsApiException) as unknown:
        client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id="999999"))
    assert unknown.value.status == 404


def test_a_gdpr_deleted_address_is_blocklisted_for_the_ui_but_the_api_may_re_create_it(client, sandbox, fixtures):
    """HubSpot's permanent delete blocklists the contact's address: it "cannot be added back ... through HubSpot's
    UI or an import", and may come back only by a form, a connected inbox, or when "the contact is added through an
    API request" (https://knowledge.hubspot.com/privacy-and-consent/how-do-i-perform-a-gdpr-delete-in-hubspot,
    "Perform a permanent delete in HubSpot", June 2025; the endpoint's reference,
    https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/gdpr/gdpr-delete-contact, names
    no error for a blocklisted address). So the SDK's write goes through, as on HubSpot: nothing at the vendor
    stops a re-send, and our erasure's suppression and tombstone are what keep a forgotten person out."""
    from hubspot.crm.contacts import PublicGdprDeleteInput

    from segprovider_sandbox.admin.directory import AdminError
    from segprovider_sandbox.admin.edits import change_members, set_attribute

    by_id, _ = _upsert(client, ["forgotten-1@example.com", "forgotten-2@example.com"]).results
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=by_id.id))
    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id="Forgotten-2@example.com", id_property="email"))
    assert sandbox.state.hubspot_gdpr_blocklisted("forgotten-1@example.com")
    assert sandbox.state.hubspot_gdpr_blocklisted("FORGOTTEN-2@example.com")
    assert not sandbox.state.hubspot_gdpr_blocklisted("someone-else@example.com")
    # HubSpot's UI (the sandbox's hand edits) refuses the address, before adding anyone of the same edit
    with pytest.raises(AdminError, match="blocklisted"):
        change_members(sandbox.state, "hubspot", str(fixtures.hubspot_list_id),
                       ["new-person@example.com", "forgotten-1@example.com"], present=True)
    with pytest.raises(AdminError, match="blocklisted"):
        set_attribute(sandbox.state, "hubspot", "forgotten-2@example.com", "firstname", "Ann")
    assert sandbox.state.hubspot_contact("new-person@example.com") is None
    # the API does not: a direct SDK write re-creates the contact
    recreated = _upsert(client, ["forgotten-1@example.com"]).results[0]
    assert recreated.new is True
    created = client.crm.contacts.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        SimplePublicObjectBatchInputForCreate(properties={"email": "forgotten-2@example.com"})]))
    assert created.results[0].properties["email"] == "forgotten-2@example.com"


def _gdpr_delete_by_id(client: Client, contact) -> None:
    from hubspot.crm.contacts import PublicGdprDeleteInput

    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=contact.id))


def _gdpr_delete_by_email(client: Client, contact) -> None:
    from hubspot.crm.contacts import PublicGdprDeleteInput

    client.crm.contacts.basic_api.purge(PublicGdprDeleteInput(object_id=contact.properties["email"],
                                                              id_property="email"))


def _archive(client: Client, contact) -> None:
    client.crm.contacts.basic_api.archive(contact.id)


_NOT_SERVED = ("the sandbox does not serve the archive, DELETE /crm/v3/objects/contacts/{id} (405): drop this mark"
               " when it does")


@pytest.mark.parametrize("delete", [
    pytest.param(_gdpr_delete_by_id, id="gdpr-delete-by-id"),
    pytest.param(_gdpr_delete_by_email, id="gdpr-delete-by-email"),
    pytest.param(_archive, id="archive",
                 marks=pytest.mark.xfail(raises=ContactsApiException, strict=True, reason=_NOT_SERVED)),
])
@pytest.mark.parametrize("create", ["batch-create", "batch-upsert"])
def test_a_deleted_contacts_id_is_never_given_to_a_new_contact(client, delete, create):
    """A record id names one record for good. HubSpot can restore an archived contact up to 90 days after the delete
    (its record lives on in the recycle bin), and tells restorable from permanent (GDPR) deletes
    (https://knowledge.hubspot.com/records/restore-deleted-records, November 2025;
    https://knowledge.hubspot.com/privacy-and-consent/understand-restorable-and-permanent-contact-deletions); the
    contact's answer carries ``archived``/``archivedAt`` beside its ``id``
    (https://developers.hubspot.com/docs/api-reference/latest/crm/objects/contacts/create-contact). HubSpot documents
    no case where a deleted record's id names another record, and an integration that stored the id (our sync state)
    would then address someone else. SQLite, without ``AUTOINCREMENT``, hands out the highest rowid again once its
    row is deleted (https://www.sqlite.org/autoinc.html): the contact with the highest id, deleted, then a new
    contact, is the case that shows it."""
    batch = client.crm.contacts.batch_api
    older = _upsert(client, ["older@example.com"]).results[0]
    highest = _upsert(client, ["a-highest@example.com"]).results[0]
    assert int(highest.id) > int(older.id)  # A holds the highest id, the one SQLite would hand out again
    delete(client, highest)
    with pytest.raises(ContactsApiException) as gone:
        client.crm.contacts.basic_api.get_by_id(highest.id)
    assert gone.value.status == 404
    if create == "batch-create":
        new = batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
            SimplePublicObjectBatchInputForCreate(properties={"email": "b-new@example.com"})])).results[0]
    else:
        new = _upsert(client, ["b-new@example.com"]).results[0]
    assert new.id != highest.id
    # the deleted contact's id still names nobody: not the new contact
    with pytest.raises(ContactsApiException) as still_gone:
        client.crm.contacts.basic_api.get_by_id(highest.id)
    assert still_gone.value.status == 404
