"""SQL for every dialect, below every room that writes SQL: :mod:`.dialects` (rendering, quoting and
every literal helper, per warehouse) and :mod:`.expressions` (sqlglot expression builders)."""
