"""The segments project: its spec as plain data classes, and the loader that validates a folder into it.

:func:`load_project` reads a folder of YAML files and returns a :class:`Project`; the data model,
destinations, syncs and sources are defined in :mod:`.spec`, segments and their rule trees in
:mod:`.rules`, the hybrid model's hub in :mod:`.hybrid`, the distributed model's reconcile
policies in :mod:`.distributed`.
"""

from __future__ import annotations

from airflow_segprovider.core.project.hybrid import AttributePush, Hub, HubAttribute, SpokeSegment
from airflow_segprovider.core.project.loader import load_project
from airflow_segprovider.core.project.rules import (
    AllOf,
    AnyOf,
    AttributeCondition,
    Condition,
    EventCondition,
    Not,
    Predicate,
    PriorityGroup,
    PropertyFilter,
    Segment,
    SegmentCondition,
    Split,
    SplitArm,
    iter_conditions,
    referenced_segments,
)
from airflow_segprovider.core.project.spec import (
    Attribute,
    ChannelPolicy,
    ConsentModel,
    CustomerEntity,
    DataModel,
    Destination,
    EventSource,
    Incremental,
    Pagination,
    Project,
    ReconcilePolicy,
    Source,
    Sync,
    WarehouseSettings,
    centralized_syncs,
    reconciled_syncs,
)

__all__ = [
    "AllOf",
    "AnyOf",
    "Attribute",
    "AttributeCondition",
    "AttributePush",
    "ChannelPolicy",
    "Condition",
    "ConsentModel",
    "CustomerEntity",
    "DataModel",
    "Destination",
    "EventCondition",
    "EventSource",
    "Hub",
    "HubAttribute",
    "Incremental",
    "Not",
    "Pagination",
    "Predicate",
    "PriorityGroup",
    "Project",
    "PropertyFilter",
    "ReconcilePolicy",
    "Segment",
    "SegmentCondition",
    "Source",
    "Split",
    "SplitArm",
    "SpokeSegment",
    "Sync",
    "WarehouseSettings",
    "centralized_syncs",
    "iter_conditions",
    "load_project",
    "reconciled_syncs",
    "referenced_segments",
]
