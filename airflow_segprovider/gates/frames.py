"""Gate queries' results as pandas DataFrames, and what is derived from them in Python.

Great Expectations validates these frames with its pandas datasource. Its SQL
datasource is not used on DuckDB: through duckdb-engine it fetches metric rows
after the DuckDB driver has dropped them, so every metric comes back empty
(``MetricResolutionError: list index out of range``) and a gate fails without an
observed value, or looks fine where the failure is swallowed. Running the small
gate query in the warehouse ourselves and handing GX the rows avoids that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from airflow_segprovider.core.project.spec import Attribute
    from airflow_segprovider.core.warehouses.base import Warehouse

#: The pandas dtype family each declared attribute type must arrive as.
EXPECTED_FAMILY = {"number": "number", "string": "string", "boolean": "boolean", "date": "datetime",
                   "timestamp": "datetime"}
# pandas.api.types.infer_dtype answers for object columns (values of mixed Python types).
_INFERRED_FAMILY = {"string": "string", "boolean": "boolean", "integer": "number", "floating": "number",
                    "mixed-integer-float": "number", "decimal": "number", "date": "datetime",
                    "datetime": "datetime", "datetime64": "datetime"}


def query_frame(warehouse: Warehouse, sql: str) -> pd.DataFrame:
    """Run ``sql`` in the warehouse and return every row as a DataFrame, fetched before returning.

    DuckDB: through a cursor of the warehouse's connection, ``.sql(q).df()`` (nullable pandas
    dtypes: ``Int64``, ``boolean``, ``str``, ``datetime64``). Other warehouses: their Arrow batches.
    """
    connection = getattr(warehouse, "connection", None)
    if warehouse.dialect == "duckdb" and connection is not None and hasattr(connection, "cursor"):
        cursor = connection.cursor()
        try:
            return cursor.sql(sql).df()
        finally:
            cursor.close()
    return _arrow_frame(warehouse, sql)


def _arrow_frame(warehouse: Warehouse, sql: str) -> pd.DataFrame:
    import pandas as pd
    import pyarrow as pa

    batches = list(warehouse.iter_batches(sql))
    if not batches:
        return pd.DataFrame(warehouse.query_records(sql))
    nullable = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return pa.Table.from_batches(batches).to_pandas(types_mapper=nullable.get)


def dtype_family(series: pd.Series) -> str:
    """``number``, ``string``, ``boolean`` or ``datetime`` for a column, else what pandas says it is."""
    import pandas as pd
    from pandas.api import types

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return dtype_family(pd.Series(dtype.categories))
    if dtype == object:
        inferred = types.infer_dtype(series, skipna=True)
        return _INFERRED_FAMILY.get(inferred, inferred)
    if types.is_bool_dtype(dtype):  # before numeric: pandas counts booleans as numbers
        return "boolean"
    if types.is_numeric_dtype(dtype):
        return "number"
    if types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if types.is_string_dtype(dtype):
        return "string"
    return str(dtype)


def profile_types(sample: pd.DataFrame, attributes: Sequence[Attribute]) -> pd.DataFrame:
    """One row per attribute: declared type, the dtype it arrived as, and its share of NULLs in ``sample``.

    An attribute whose column is not in ``sample`` (missing from the table) is ``missing``.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    size = len(sample)
    for attribute in attributes:
        row = {"attribute": attribute.name, "column_name": attribute.column, "declared_type": attribute.type,
               "expected_family": EXPECTED_FAMILY[attribute.type]}
        if attribute.column in sample.columns:
            column = sample[attribute.column]
            row.update(observed_dtype=str(column.dtype), observed_family=dtype_family(column),
                       null_fraction=float(column.isna().mean()) if size else None)
        else:
            row.update(observed_dtype="missing", observed_family="missing", null_fraction=1.0)
        row["sample_rows"] = size
        rows.append(row)
    columns = ["attribute", "column_name", "declared_type", "expected_family", "observed_dtype", "observed_family",
               "null_fraction", "sample_rows"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["null_fraction"] = frame["null_fraction"].astype("Float64")
    frame["sample_rows"] = frame["sample_rows"].astype("Int64")
    return frame


def add_ages(frame: pd.DataFrame, as_of: dt.datetime) -> pd.DataFrame:
    """Add ``age_hours`` = hours from ``newest`` to ``as_of`` (naive UTC); NULL where ``newest`` is."""
    import pandas as pd

    newest = pd.to_datetime(frame["newest"])
    if getattr(newest.dt, "tz", None) is not None:
        newest = newest.dt.tz_convert("UTC").dt.tz_localize(None)
    out = frame.copy()
    out["newest"] = newest
    out["age_hours"] = ((pd.Timestamp(as_of) - newest).dt.total_seconds() / 3600.0).round(3).astype("Float64")
    return out
