"""Meta's customer-file match keys as the sandbox reads them: which keys there are, which are hashed, and
which identify a person (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash).

A row is matched on any of its *identifiers*: ``EMAIL``, ``PHONE``, ``MADID`` and ``EXTERN_ID`` each, and the
name-and-place combinations ``FN``+``LN``+``ZIP`` and ``FN``+``LN``+``CT``+``ST`` (the hash of their hashes).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

__all__ = ["IDENTIFYING_COMBINATIONS", "IDENTIFYING_KEYS", "MATCH_KEYS", "UNHASHED_KEYS", "row_identifiers"]

#: Meta's customer-file keys; single-key schemas may also name the ``_SHA256`` forms
MATCH_KEYS = ("EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT", "ST", "ZIP", "MADID",
              "COUNTRY", "EXTERN_ID")
#: keys sent as they are, not hashed
UNHASHED_KEYS = frozenset({"MADID", "EXTERN_ID"})
#: keys that identify a person on their own
IDENTIFYING_KEYS = ("EMAIL", "PHONE", "MADID", "EXTERN_ID")
#: key combinations that identify a person together
IDENTIFYING_COMBINATIONS = (("FN", "LN", "ZIP"), ("FN", "LN", "CT", "ST"))

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def row_identifiers(keys: list[str], row: Any) -> list[str] | None:
    """The hashes that identify the person of one multi-key row (its identifying keys, then the hash of each
    complete name-and-place combination); None for an invalid row (wrong length, a hashed key that is not a
    hash, or nothing that identifies anyone)."""
    if not isinstance(row, list) or len(row) != len(keys) or not all(isinstance(value, str) for value in row):
        return None
    values = dict(zip(keys, row))
    for key, value in values.items():
        if value and key not in UNHASHED_KEYS and not _SHA256_HEX.fullmatch(value):
            return None
    found = [value if key not in UNHASHED_KEYS else hashlib.sha256(f"{key}:{value}".encode()).hexdigest()
             for key in IDENTIFYING_KEYS if (value := values.get(key))]
    for combination in IDENTIFYING_COMBINATIONS:
        if all(values.get(key) for key in combination):
            found.append(hashlib.sha256("|".join(values[key] for key in combination).encode()).hexdigest())
    return found or None
