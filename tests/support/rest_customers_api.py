"""The paginated customers API source the REST ingest tests share (DuckDB and PostgreSQL)."""

from __future__ import annotations

API_SOURCE = """\
  - name: crm_api
    table: customers
    kind: rest_api
    connection_id: crm_api
    url: /v1/customers
    records: data
    pagination: {{style: cursor, page_size: {page_size}, cursor_path: meta.next_cursor}}
    incremental: {{column: updated_at, param: updated_since}}
"""


def customers_api_source(page_size: int = 3) -> str:
    """The ``crm_api`` source item (under ``sources:``), cursor-paginated by ``page_size``."""
    return API_SOURCE.format(page_size=page_size)


CUSTOMERS_API = "sources:\n" + customers_api_source()


def customer(number: int, updated: str, **fields) -> dict:
    return {"customer_id": number, "email": f"c{number}@example.com", "ltv": number * 10.0,
            "updated_at": updated, **fields}
