"""The ``destinations:`` section: where segments are synced to, checked against the data model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.project.items import did_you_mean
from airflow_segprovider.core.project.spec import Destination

if TYPE_CHECKING:
    from airflow_segprovider.core.project.items import IssueList, ProjectItem
    from airflow_segprovider.core.project.spec import DataModel


def parse_destinations(items: dict[str, ProjectItem], model: DataModel, issues: IssueList) -> dict[str, Destination]:
    """Valid destinations; each problem is reported where it is written (SEG040, SEG044-SEG046)."""
    out: dict[str, Destination] = {}
    attributes = model.customer.attributes
    for name, item in items.items():
        raw, ok = item.data, True
        if not raw["connection_id"].strip():
            issues.add("SEG040", f"destination {name!r} has no connection", item.loc("connection_id"),
                       "set connection_id to the Airflow connection holding its credentials")
            ok = False
        if raw["identity"] not in attributes:
            issues.add("SEG046", f"destination {name!r}: identity {raw['identity']!r} is not a customer attribute",
                       item.loc("identity"), did_you_mean(raw["identity"], attributes, "customer attributes"))
            ok = False
        for field_name, attribute in raw.get("field_mapping", {}).items():
            if attribute not in attributes:
                issues.add("SEG044", f"destination {name!r}: field {field_name!r} maps unknown attribute "
                           f"{attribute!r}", item.loc("field_mapping", field_name),
                           did_you_mean(attribute, attributes, "customer attributes"))
                ok = False
        if model.consent is None:
            issues.add("SEG045", f"destination {name!r} reaches channel {raw['channel']!r}, but the model declares "
                       "no consent table", item.loc("channel"),
                       "declare model.consent with this channel; use require_opt_in: false to allow customers "
                       "who never answered (consent is checked before anything is sent)")
            ok = False
        elif raw["channel"] not in model.consent.channels:
            issues.add("SEG045", f"destination {name!r}: channel {raw['channel']!r} is not a consent channel",
                       item.loc("channel"), did_you_mean(raw["channel"], model.consent.channels, "consent channels"))
            ok = False
        if ok:
            out[name] = Destination(name, raw["kind"], raw["connection_id"], raw["channel"], raw["identity"],
                                    dict(raw.get("config", {})), dict(raw.get("field_mapping", {})),
                                    raw.get("description", ""), item.loc())
    return out
