"""Meta (Facebook) Custom Audiences connector: people added to and removed from one audience by hashed keys.

Contract followed (Marketing API, Custom Audience Users and Customer File Custom Audiences):

* ``POST /v{N}.0/{custom_audience_id}/users`` adds and ``DELETE`` on the same
  path removes, with ``payload={"schema": "EMAIL_SHA256", "data": [...]}``;
  at most 10,000 entries per call. The answer reports ``num_received``,
  ``num_invalid_entries`` and ``invalid_entry_samples``.
* Multi-key uploads: the destination's ``field_mapping`` maps Meta's match keys (``PHONE``, ``FN``, ``LN``,
  ``ZIP``, ``CT``, ``ST``, ``COUNTRY``, ``EXTERN_ID``, ... see :mod:`.keys`) to customer attributes;
  the rows then carry the email and those keys (``schema`` a list), each normalized by Meta's rules and
  hashed (https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences#hash), with
  ``""`` for a key a person lacks. More keys, more people matched. A person's hashed keys are kept as their
  destination id, so a removal (and an erasure) names them by the same keys Meta may have matched them on.
* Identifiers are normalised (surrounding whitespace trimmed, lowercased) and
  then SHA-256 hashed, hex encoded. Values that already are 64 hex characters
  are taken as hashed and passed through; empty identifiers, and on adds values
  that are not an email address (Meta would take their hash, which can never
  match anyone), are dropped and reported as rejected, never failing the batch.
* Members cannot be read back; the audience only reports
  ``approximate_count_lower_bound`` / ``approximate_count_upper_bound``, a count of the people
  Meta *matched* to an account (often well under the number uploaded), and an upload may take
  up to 24 hours to change it. ``GET /{audience_id}/sessions`` lists the upload sessions with
  ``num_received``, ``num_matched`` and ``stage``.

Counts: :meth:`MetaCustomAudienceClient.reported_count` holds ``N`` people sent to the range
``[min_match_rate × N, N]`` (destination config ``min_match_rate``, default
:data:`DEFAULT_MIN_MATCH_RATE`: below Meta's usual 40-75 %, far above an upload that matched
nobody), takes the observed match rate from the recent sessions that *added* people, and marks
the count pending while a session is still being applied (so "not yet applied" is not read as
drift). Every call is its own upload session (``session={"session_id", "batch_seq": 1,
"last_batch_flag": true}``), and the session id tells ours apart: its bits above the 47th are
:data:`ADD_SESSION_TAG` for an add and :data:`REMOVE_SESSION_TAG` for a removal, so any process
reading the sessions later (the count task is not the sync task) knows which sessions to take the
match rate from; a removal's matches say nothing about how well adds match. A session that failed,
or is still "processing" :data:`APPLY_HOURS` hours after it started (Meta applies an upload within
24 hours), is not pending: it will never apply, and waiting for it would keep every count
"pending" forever; the reading logs it instead.
* Auth: ``access_token`` (and ``appsecret_proof``, the HMAC-SHA256 of the token
  keyed by the app secret, when an app secret is configured) as parameters.
* Graph errors are ``{"error": {"message", "code", "error_subcode", ...}}``.
  Throttling is reported with codes 4, 17, 32, 613 and 80000-80014 (Business
  Use Case limits), with ``X-Business-Use-Case-Usage`` carrying
  ``estimated_time_to_regain_access`` in minutes; code 190 is an invalid token.
"""

from airflow_segprovider.destinations.meta.client import MetaCustomAudienceClient
from airflow_segprovider.destinations.meta.config import (
    CONNECTION_FIELDS,
    DEFAULT_API_VERSION,
    DEFAULT_MIN_MATCH_RATE,
    KIND,
    MAX_ENTRIES_PER_CALL,
    SCHEMA,
    MetaConfig,
)
from airflow_segprovider.destinations.meta.keys import MATCH_KEYS, hashed_key, normalize_and_hash, normalize_key
from airflow_segprovider.destinations.meta.policy import MetaResponsePolicy
from airflow_segprovider.destinations.meta.sessions import ADD_SESSION_TAG, APPLY_HOURS, REMOVE_SESSION_TAG

__all__ = [
    "ADD_SESSION_TAG",
    "APPLY_HOURS",
    "CONNECTION_FIELDS",
    "DEFAULT_API_VERSION",
    "DEFAULT_MIN_MATCH_RATE",
    "KIND",
    "MATCH_KEYS",
    "MAX_ENTRIES_PER_CALL",
    "REMOVE_SESSION_TAG",
    "SCHEMA",
    "MetaConfig",
    "MetaCustomAudienceClient",
    "MetaResponsePolicy",
    "hashed_key",
    "normalize_and_hash",
    "normalize_key",
]
