"""How Mailchimp refuses a contact, and which refusals no retry can lift.

Mailchimp documents two batch ``error_code`` values: ``ERROR_CONTACT_EXISTS`` (already a member,
``update_existing`` false) and ``ERROR_GENERIC`` for everything else, so the refusals that matter
are told apart by their text, which is Mailchimp's own:

* ``Member In Compliance State``: "{email} is in a compliance state due to unsubscribe, bounce, or
  compliance review and cannot be subscribed." The person unsubscribed themselves or the address
  was cleaned; only the person can lift it (a signup form, a confirmation), never the API.
* ``Forgotten Email Not Subscribed``: "{email} was permanently deleted and cannot be re-imported."

Both are :class:`FinalRejection` records, ``retryable`` false: sending the contact again on the
next run can only be refused again. The sync engine counts every rejection as one attempt and
retries until ``max_attempts``; reading ``retryable`` to mark such a record exhausted at once is
the engine's part (``core/sync/record.py``), so the flag lives on the record until it does.
"""

from __future__ import annotations

from dataclasses import dataclass

from airflow_segprovider.core.destination import RejectedRecord

__all__ = [
    "COMPLIANCE_STATE",
    "CONTACT_EXISTS",
    "FORGOTTEN_CONTACT",
    "FinalRejection",
    "rejection",
]

#: Mailchimp's batch error code for a contact the audience already holds (``update_existing`` false).
CONTACT_EXISTS = "ERROR_CONTACT_EXISTS"
#: our code for a cleaned or self-unsubscribed contact Mailchimp will not subscribe again
COMPLIANCE_STATE = "compliance_state"
#: our code for a permanently deleted contact Mailchimp will not import again
FORGOTTEN_CONTACT = "forgotten_contact"

_FINAL_TEXTS = (
    (COMPLIANCE_STATE, ("compliance state",)),
    (FORGOTTEN_CONTACT, ("permanently deleted", "forgotten email")),
)


@dataclass(frozen=True)
class FinalRejection(RejectedRecord):
    """A refusal no retry can lift: the contact's own state forbids what was asked.

    :param retryable: always false; the engine may stop sending the record at once.
    """

    retryable: bool = False


def rejection(key: str, vendor_code: str, message: str) -> RejectedRecord:
    """The rejected record for Mailchimp's refusal of ``key``: final for compliance and forgotten contacts.

    :param key: our customer key.
    :param vendor_code: Mailchimp's ``error_code`` (or ours when it gave none).
    :param message: Mailchimp's explanation (batch ``error``, or a problem document's title and detail).
    """
    lowered = message.lower()
    for code, texts in _FINAL_TEXTS:
        if any(text in lowered for text in texts):
            return FinalRejection(key, code, message)
    return RejectedRecord(key, vendor_code, message)
