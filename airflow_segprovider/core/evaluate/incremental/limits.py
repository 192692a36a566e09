"""When incremental evaluation gives way to a full one: the thresholds, read at each run (tests lift them)."""

from __future__ import annotations

#: A table whose rows of unseen loads exceed this share of it: a full evaluation is cheaper.
MAX_NEW_ROWS_SHARE = 0.10
#: Touched customers beyond this share of the customers: a full evaluation is cheaper. In
#: benchmarks/incremental.py a day touching 21% of the customers cost 48% of a full evaluation; where the
#: two meet was not measured, so this stays below a straight-line guess (about 45%).
MAX_TOUCHED_SHARE = 0.35
#: A write whose delta rows reach this share of its base rows is replaced by a new full write.
MAX_DELTA_SHARE = 1.0
