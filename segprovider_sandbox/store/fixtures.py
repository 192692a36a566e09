"""The demo's fixtures: the ids the example project's destinations name."""

from __future__ import annotations

from dataclasses import dataclass

# The example project's second Meta audience (``high_intent``): ``python -m segprovider_sandbox --seed`` creates it
# beside the :class:`DemoFixtures`, as the example's callers do.
EXAMPLE_META_AUDIENCE_ID = "23850000000000002"
EXAMPLE_META_AUDIENCE_NAME = "high_intent"
# The example project's other static segments of the demo audience (``at_risk``, the ``spring_promo`` treatment arm):
# the Mailchimp connector would create them on its first add, but seeded they show in ``segprovider sandbox lists``
# and can be hand-edited before any sync.
EXAMPLE_MAILCHIMP_SEGMENT_NAMES = ("at_risk", "spring_promo_treatment")


@dataclass(frozen=True)
class DemoFixtures:
    """Ids of the fixtures :meth:`SandboxState.seed_demo_fixtures` creates.

    They match the example project's ``segments_project/destinations.yml`` (in the provider's ``example``
    package), including the custom merge fields (tag, name, type) and contact properties (name, label, type) its
    ``field_mapping`` names.
    """

    mailchimp_list_id: str = "a1b2c3d4e5"
    mailchimp_segment_id: int = 1001
    mailchimp_segment_name: str = "vip"
    hubspot_list_id: str = "101"
    hubspot_list_name: str = "vip"
    # the lists of ``sales_priority``, the segment the distributed model reconciles (hand-edited in both tools)
    reconciled_mailchimp_segment_id: int = 1002
    reconciled_mailchimp_segment_name: str = "sales_priority"
    reconciled_hubspot_list_id: str = "102"
    reconciled_hubspot_list_name: str = "sales_priority"
    meta_ad_account_id: str = "1234567890"
    meta_audience_id: str = "23850000000000001"
    meta_audience_name: str = "win_back"
    mailchimp_merge_fields: tuple[tuple[str, str, str], ...] = (
        ("COUNTRY", "Country", "text"), ("LTV", "Lifetime value", "number"), ("LASTBUY", "Last purchase", "date"))
    hubspot_contact_properties: tuple[tuple[str, str, str], ...] = (
        ("lifetime_value", "Lifetime value", "number"), ("last_purchase_date", "Last purchase date", "date"))
