"""The ``sources:`` section: where the rows of each table of the data model come from (SEG060-SEG067)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_segprovider.core.project.durations import parse_duration
from airflow_segprovider.core.project.items import did_you_mean
from airflow_segprovider.core.project.spec import Incremental, Pagination, Source

if TYPE_CHECKING:
    from airflow_segprovider.core.project.items import IssueList, ProjectItem
    from airflow_segprovider.core.project.spec import DataModel


def _model_tables(model: DataModel) -> dict[str, str]:
    """Warehouse table -> its role in the model (``customer``, ``event``, ``order`` or ``consent``)."""
    tables = {model.customer.table: "customer"}
    for source in model.events.values():
        tables.setdefault(source.table, "event" if source.type_column else "order")
    if model.consent is not None:
        tables.setdefault(model.consent.table, "consent")
    return tables


_SOURCE_KIND_KEYS = {
    "file": ("format", "path", "delimiter"),
    "warehouse_table": ("query", "from_table"),
    "rest_api": ("url", "connection_id", "records", "params", "pagination"),
}
_PAGINATION_STYLE_KEYS = {
    "none": (),
    "cursor": ("page_size", "page_size_param", "cursor_param", "cursor_path"),
    "offset": ("page_size", "page_size_param", "offset_param"),
    "link_header": ("page_size", "page_size_param"),
}


def parse_sources(items: dict[str, ProjectItem], model: DataModel, issues: IssueList) -> dict[str, Source]:
    """Valid sources; each problem is reported where it is written (SEG060-SEG067)."""
    out: dict[str, Source] = {}
    tables = _model_tables(model)
    by_table: dict[str, list[ProjectItem]] = {}
    for name, item in items.items():
        raw, kind, before = item.data, item.data["kind"], len(issues.items)
        role = tables.get(raw["table"])
        if role is None:
            issues.add("SEG061", f"source {name!r} loads table {raw['table']!r}, which is not a table of the data model",
                       item.loc("table"), did_you_mean(raw["table"], tables, "model tables"))
        by_table.setdefault(raw["table"], []).append(item)
        for other_kind, keys in _SOURCE_KIND_KEYS.items():
            for key in keys:
                if other_kind != kind and key in raw:
                    issues.add("SEG062", f"source {name!r}: {key!r} does not apply to a {kind} source",
                               item.loc(key), f"remove it ({key!r} is a setting of {other_kind} sources)")
        if "delimiter" in raw and raw.get("format") != "csv":
            issues.add("SEG062", f"source {name!r}: 'delimiter' applies to csv files only", item.loc("delimiter"),
                       "remove it")
        if kind == "warehouse_table" and ("query" in raw) == ("from_table" in raw):
            issues.add("SEG062", f"source {name!r}: a warehouse_table source needs exactly one of 'query' and "
                       "'from_table'", item.loc(), "name the table to copy, or write the SELECT that reads it")
        if kind == "warehouse_table" and raw.get("from_table") == raw["table"]:
            issues.add("SEG066", f"source {name!r} reads the table it loads ({raw['table']!r})",
                       item.loc("from_table"), "read the raw or staging table the data arrives in")
        incremental = raw.get("incremental")
        if incremental is not None and kind == "file":
            issues.add("SEG062", f"source {name!r}: 'incremental' does not apply to a file source",
                       item.loc("incremental"), "file sources reload their files idempotently; remove it")
        elif incremental is not None and kind == "warehouse_table" and "param" in incremental:
            issues.add("SEG062", f"source {name!r}: incremental 'param' applies to rest_api sources only",
                       item.loc("incremental", "param"), "remove it; the watermark filters the query itself")
        elif incremental is not None and kind == "rest_api" and "param" not in incremental:
            issues.add("SEG065", f"source {name!r}: incremental REST source without 'param'",
                       item.loc("incremental"), "name the query parameter that sends the watermark, "
                       "e.g. 'param: updated_since'")
        if kind == "rest_api":
            url = raw["url"]
            absolute = url.startswith(("http://", "https://"))
            if "://" in url and not absolute:
                issues.add("SEG065", f"source {name!r}: url {url!r} is not an http(s) URL", item.loc("url"),
                           "use http:// or https://, or a path under the connection's base URL")
            elif not absolute and "connection_id" not in raw:
                issues.add("SEG065", f"source {name!r}: url {url!r} is relative but the source names no connection",
                           item.loc("url"), "set connection_id (its host is the base URL), or write an absolute URL")
            pagination = raw.get("pagination", {"style": "none"})
            style = pagination["style"]
            for key in pagination:
                if key != "style" and key not in _PAGINATION_STYLE_KEYS[style]:
                    issues.add("SEG065", f"source {name!r}: {key!r} does not apply to {style} pagination",
                               item.loc("pagination", key), "remove it")
            if style == "offset" and "page_size" not in pagination:
                issues.add("SEG065", f"source {name!r}: offset pagination needs a page_size",
                           item.loc("pagination"), "add 'page_size: 100' (the offset advances by it)")
        mode = raw.get("mode", "upsert" if role == "customer" else "append")
        key = tuple(raw.get("key", (model.customer.key,) if role == "customer" else ()))
        if role == "customer" and mode == "append":
            issues.add("SEG063", f"source {name!r}: the customer table cannot be loaded in append mode",
                       item.loc("mode"), "use upsert (one row per customer, by its key) or replace")
        elif mode == "upsert" and not key:
            issues.add("SEG063", f"source {name!r}: upsert into {raw['table']!r} needs a 'key'", item.loc(),
                       "name the columns that identify a row, e.g. 'key: [order_id]', or use mode: append")
        elif mode != "upsert" and "key" in raw:
            issues.add("SEG063", f"source {name!r}: 'key' applies to upsert mode only", item.loc("key"),
                       "remove it, or use mode: upsert")
        for guard in ("max_shrink_fraction", "allow_empty"):
            if guard in raw and mode != "replace":
                issues.add("SEG063", f"source {name!r}: {guard!r} applies to replace mode only", item.loc(guard),
                           f"remove it: a {mode} load never removes rows the source no longer has")
        future_tolerance = Source.future_tolerance
        if "future_tolerance" in raw:
            try:
                future_tolerance = parse_duration(raw["future_tolerance"])
            except ValueError as exc:
                issues.add("SEG048", f"source {name!r}: future_tolerance {exc}", item.loc("future_tolerance"))
        if role == "customer" and mode == "upsert" and key != (model.customer.key,):
            issues.add("SEG064", f"source {name!r}: the customer table is upserted by the model's key "
                       f"{model.customer.key!r}, not by {list(key)}", item.loc("key"),
                       f"write 'key: [{model.customer.key}]' or leave 'key' out")
        if len(issues.items) == before and role is not None:
            pagination = raw.get("pagination", {"style": "none"})
            out[name] = Source(
                name=name, table=raw["table"], kind=kind, mode=mode, key=key if mode == "upsert" else (),
                format=raw.get("format"), path=raw.get("path"), delimiter=raw.get("delimiter"),
                query=raw.get("query"), from_table=raw.get("from_table"), url=raw.get("url"),
                connection_id=raw.get("connection_id"), records=raw.get("records", ""),
                params=dict(raw.get("params", {})), pagination=Pagination(**pagination),
                incremental=Incremental(**incremental) if incremental else None,
                max_shrink_fraction=float(raw.get("max_shrink_fraction", Source.max_shrink_fraction)),
                allow_empty=bool(raw.get("allow_empty", Source.allow_empty)), future_tolerance=future_tolerance,
                description=raw.get("description", ""), loc=item.loc())
    for table, loaders in by_table.items():
        replacing = [item for item in loaders if item.data.get("mode") == "replace"]
        if replacing and len(loaders) > 1:
            others = ", ".join(repr(item.data["name"]) for item in loaders if item is not replacing[0])
            issues.add("SEG067", f"source {replacing[0].data['name']!r} replaces table {table!r}, which source(s) "
                       f"{others} also load", replacing[0].loc("mode"),
                       "a replace load deletes the other sources' rows; use upsert or append, or one source")
    return out
