"""Constants shared by the sync tests (a module of its own: test folders must not import each other's conftest)."""

from __future__ import annotations

import datetime as dt

from airflow_segprovider.example import EXAMPLE_PROJECT

PROJECT_DIR = EXAMPLE_PROJECT
DAY_1 = dt.datetime(2026, 11, 23)
DAY_2 = dt.datetime(2026, 11, 24)
FAST_RETRIES = {"backoff_base": 0.01, "backoff_max": 0.05, "max_attempts": 6}
