"""Meta's customer-file match keys, each normalized by Meta's documented rules before SHA-256.

Rules (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash):

``EMAIL``
    trimmed, lowercased.
``PHONE``
    digits only (symbols, letters and spaces removed), leading zeros removed; it must carry the country code.
``FN``, ``LN``
    lowercased letters only (punctuation, digits and spaces removed; UTF-8 letters such as ``é`` kept).
``FI``
    the first letter of the first name, lowercased.
``CT``
    lowercased letters only, no spaces.
``ST``
    lowercased letters only (US states as their two-letter code).
``ZIP``
    lowercased, no spaces; a US ZIP+4 keeps its first five digits.
``COUNTRY``
    the two-letter ISO 3166-1 alpha-2 code, lowercased.
``GEN``
    ``m`` or ``f``.
``DOBY``, ``DOBM``, ``DOBD``
    four-digit year; two-digit month and day (zero-padded).
``EXTERN_ID``, ``MADID``
    sent as they are (trimmed; a mobile advertiser id lowercased), not hashed.

A value that normalizes to nothing, or to something the rule cannot hold (a country that is not two
letters, a month of 13), becomes the empty string: Meta takes ``""`` for a key a row lacks, so one bad
key never costs a record its other keys. Values that already are 64 lowercase hex characters are taken
as hashed and passed through.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from airflow_segprovider.core.destination import DestinationConfigError

if TYPE_CHECKING:
    from airflow_segprovider.core.destination import Record

__all__ = ["EMAIL_SHAPE", "HASHED_KEYS", "MATCH_KEYS", "UNHASHED_KEYS", "hashed_key", "match_keys",
           "normalize_and_hash", "normalize_key", "schema_of", "sent_entry", "stored_keys"]

#: every key a customer-file row may carry
MATCH_KEYS = ("EMAIL", "PHONE", "FN", "LN", "FI", "ZIP", "CT", "ST", "COUNTRY", "GEN", "DOBY", "DOBM", "DOBD",
              "MADID", "EXTERN_ID")
#: keys Meta takes as they are
UNHASHED_KEYS = frozenset({"MADID", "EXTERN_ID"})
HASHED_KEYS = frozenset(MATCH_KEYS) - UNHASHED_KEYS

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: what an email must look like to be worth uploading (its hash could match nobody otherwise)
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_NOT_DIGIT = re.compile(r"[^0-9]")
_US_ZIP = re.compile(r"^([0-9]{5})-?[0-9]{4}$")


def _letters(value: str) -> str:
    return "".join(character for character in value.lower() if character.isalpha())


def _two_digits(value: str, highest: int) -> str:
    digits = _NOT_DIGIT.sub("", value)
    return f"{int(digits):02d}" if digits and 1 <= int(digits) <= highest else ""


def normalize_key(key: str, value: object) -> str:
    """``value`` normalized as Meta's rule for ``key`` says; ``""`` when nothing usable is left.

    :param key: one of :data:`MATCH_KEYS`.
    :param value: the customer attribute's value (numbers and dates are read as their text).
    :raises KeyError: ``key`` is not a Meta match key.
    """
    if key not in MATCH_KEYS:
        raise KeyError(key)
    text = "" if value is None else str(value).strip()
    if not text:
        return ""
    if key == "EMAIL":
        return text.lower()
    if key == "PHONE":
        return _NOT_DIGIT.sub("", text).lstrip("0")
    if key in ("FN", "LN", "CT", "ST"):
        return _letters(text)
    if key == "FI":
        return _letters(text)[:1]
    if key == "ZIP":
        compact = re.sub(r"\s+", "", text.lower())
        us = _US_ZIP.match(compact)
        return us.group(1) if us else compact
    if key == "COUNTRY":
        letters = _letters(text)
        return letters if len(letters) == 2 else ""
    if key == "GEN":
        first = text.lower()[:1]
        return first if first in ("m", "f") else ""
    if key == "DOBY":
        digits = _NOT_DIGIT.sub("", text)
        return digits if len(digits) == 4 else ""
    if key == "DOBM":
        return _two_digits(text, 12)
    if key == "DOBD":
        return _two_digits(text, 31)
    if key == "MADID":
        return text.lower()
    return text  # EXTERN_ID


def hashed_key(key: str, value: object) -> str:
    """The value Meta is sent for ``key``: normalized, then SHA-256 hex for the hashed keys; ``""`` for none.

    A value that already is a SHA-256 hex digest (a pre-hashed column) is passed through.
    """
    if key in HASHED_KEYS and isinstance(value, str) and _SHA256_HEX.match(value.strip().lower()):
        return value.strip().lower()
    normalized = normalize_key(key, value)
    if not normalized or key in UNHASHED_KEYS:
        return normalized
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def normalize_and_hash(identity: str) -> str | None:
    """The ``EMAIL_SHA256`` value of an email: trimmed, lowercased, SHA-256 hex.

    :param identity: an email address, or an already hashed one (64 hex characters, passed through).
    :return: the hash, or ``None`` for an empty identifier.
    """
    normalized = identity.strip().lower()
    if not normalized:
        return None
    if _SHA256_HEX.match(normalized):
        return normalized
    return hashlib.sha256(normalized.encode("utf-8")).hexdigest()


def match_keys(destination: str, names: Iterable[str]) -> tuple[str, ...]:
    """The Meta keys ``names`` map, in the order of :data:`MATCH_KEYS`.

    :raises DestinationConfigError: a name is not a Meta match key, or is ``EMAIL`` (the destination's identity).
    """
    names = set(names)
    for name in sorted(names):
        if name == "EMAIL":
            raise DestinationConfigError(
                "field_mapping maps EMAIL, but the email Meta is sent is the destination's identity",
                destination=destination, field=f"field_mapping.{name}",
                hint="remove EMAIL from field_mapping; set the destination's identity to the email attribute")
        if name not in MATCH_KEYS:
            raise DestinationConfigError(
                f"field_mapping.{name} is not a Meta match key",
                destination=destination, field=f"field_mapping.{name}",
                hint=f"map customer attributes to Meta's keys: {', '.join(k for k in MATCH_KEYS if k != 'EMAIL')}")
    return tuple(key for key in MATCH_KEYS if key in names)


def schema_of(records: Sequence[Record], stored: Iterable[dict[str, str] | None]) -> tuple[str, ...]:
    """The keys of one call: the email, then every Meta key the records carry (or their removal ids name).

    Other attributes are not Meta's: :meth:`MetaCustomAudienceClient.check_fields` refuses a mapping to them
    before a sync sends anything, and a caller's extra attributes are never sent.
    """
    names = {name for record in records for name in record.attributes}
    names |= {name for keys in stored if keys for name in keys}
    return ("EMAIL", *(key for key in MATCH_KEYS if key != "EMAIL" and key in names))


def stored_keys(value: str | None) -> dict[str, str] | None:
    """The keys a person was added with, from the destination id :meth:`MetaCustomAudienceClient.add_members`
    gave them (None for any other id)."""
    if not value or not value.startswith("{"):
        return None
    try:
        keys = json.loads(value)
    except ValueError:
        return None
    if not isinstance(keys, dict):
        return None
    return {str(k): str(v) for k, v in keys.items() if k in MATCH_KEYS and isinstance(v, str)}


def sent_entry(sample: Any) -> str:
    """A sample of ``invalid_entry_samples`` as the entry we sent: a hash, or a row's compact JSON."""
    text = str(sample)
    if text.startswith("["):
        try:
            return json.dumps(json.loads(text), separators=(",", ":"))
        except ValueError:
            return text
    return text
