"""The sandbox's store: every vendor's data, the webhook batches and the request log in one SQLite file."""

from __future__ import annotations

from segprovider_sandbox.store.fixtures import (
    EXAMPLE_MAILCHIMP_SEGMENT_NAMES,
    EXAMPLE_META_AUDIENCE_ID,
    EXAMPLE_META_AUDIENCE_NAME,
    DemoFixtures,
)
from segprovider_sandbox.store.hubspot import HubSpotState
from segprovider_sandbox.store.mailchimp import MailchimpState
from segprovider_sandbox.store.meta import MetaState
from segprovider_sandbox.store.request_log import RequestLog
from segprovider_sandbox.store.webhook import WebhookState


class SandboxState(MailchimpState, HubSpotState, MetaState, WebhookState, RequestLog):

    """The sandbox's SQLite store.

    :param db_path: the database file; created (with its schema) when missing.
    """

    def seed_demo_fixtures(self, fixtures: DemoFixtures | None = None) -> DemoFixtures:
        """Create the demo's audience (with its custom merge fields), static segments, HubSpot lists (and custom
        contact properties) and Meta audience.

        :param fixtures: the ids to use; :class:`DemoFixtures` defaults when None.
        :returns: the ids created.
        """
        fixtures = fixtures or DemoFixtures()
        self.seed_mailchimp_list(fixtures.mailchimp_list_id, "segprovider demo audience")
        self.seed_mailchimp_static_segment(
            fixtures.mailchimp_list_id, fixtures.mailchimp_segment_id, fixtures.mailchimp_segment_name
        )
        for tag, name, field_type in fixtures.mailchimp_merge_fields:
            self.seed_mailchimp_merge_field(fixtures.mailchimp_list_id, tag, name, field_type)
        self.seed_mailchimp_static_segment(fixtures.mailchimp_list_id, fixtures.reconciled_mailchimp_segment_id,
                                           fixtures.reconciled_mailchimp_segment_name)
        self.seed_hubspot_list(fixtures.hubspot_list_id, fixtures.hubspot_list_name)
        self.seed_hubspot_list(fixtures.reconciled_hubspot_list_id, fixtures.reconciled_hubspot_list_name)
        for name, label, property_type in fixtures.hubspot_contact_properties:
            self.seed_hubspot_contact_property(name, label, property_type)
        self.seed_meta_audience(fixtures.meta_audience_id, fixtures.meta_ad_account_id, fixtures.meta_audience_name)
        return fixtures

    def seed_example_project(self, fixtures: DemoFixtures | None = None) -> DemoFixtures:
        """Create the demo fixtures (:meth:`seed_demo_fixtures`), the example project's second Meta audience
        (``high_intent``, :data:`EXAMPLE_META_AUDIENCE_ID`) and its other static segments
        (:data:`EXAMPLE_MAILCHIMP_SEGMENT_NAMES`), so that every audience, list, segment, merge field and contact
        property the example project syncs to or pushes to exists (``tests/sandbox/test_sandbox_seed.py`` derives
        them from the example's YAML). Its spoke segments are left out: the hybrid model deploys them with their rules.
        Idempotent: running it again changes nothing.

        :param fixtures: the ids to use; :class:`DemoFixtures` defaults when None.
        :returns: the ids created.
        """
        fixtures = self.seed_demo_fixtures(fixtures)
        self.seed_meta_audience(EXAMPLE_META_AUDIENCE_ID, fixtures.meta_ad_account_id, EXAMPLE_META_AUDIENCE_NAME)
        for name in EXAMPLE_MAILCHIMP_SEGMENT_NAMES:
            self.seed_mailchimp_tag(fixtures.mailchimp_list_id, name)
        return fixtures
