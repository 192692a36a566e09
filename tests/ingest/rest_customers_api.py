"""The paginated customers API source the REST ingest tests share (DuckDB and PostgreSQL)."""

from __future__ import annotations

CUSTOMERS_API = """\
sources:
  - name: crm_api
    table: customers
    kind: rest_api
    connection_id: crm_api
    url: /v1/customers
    records: data
    pagination: {style: cursor, page_size: 3, cursor_path: meta.next_cursor}
    incremental: {column: updated_at, param: updated_since}
"""


def customer(number: int, updated: str, **fields) -> dict:
    return {"customer_id": number, "email": f"c{number}@example.com", "ltv": number * 10.0,
            "updated_at": updated, **fields}
