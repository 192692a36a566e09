"""Configuration of the sandbox: accepted credentials, faults per vendor, random seed.

The defaults (listed in :mod:`segprovider_sandbox`) let a demo run with no
config file at all.
A JSON config file has the shape of :meth:`SandboxConfig.to_dict`; every key is optional.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segprovider_sandbox.faults import RateLimit, VendorFaults

if TYPE_CHECKING:
    from collections.abc import Mapping

VENDORS = ("mailchimp", "hubspot", "meta", "webhook")

DEFAULT_MAILCHIMP_API_KEY = "sandbox-mailchimp-key-us1"
DEFAULT_HUBSPOT_TOKEN = "pat-na1-sandbox-hubspot-token"
DEFAULT_META_ACCESS_TOKEN = "sandbox-meta-access-token"
DEFAULT_WEBHOOK_SECRET = "sandbox-webhook-secret"

#: HubSpot's documented burst limit for Professional/Enterprise private apps.
HUBSPOT_DEFAULT_RATE_LIMIT = RateLimit(max_requests=190, window_seconds=10.0)
#: HubSpot's documented daily limit for Professional private apps
#: (https://developers.hubspot.com/changelog/increasing-our-api-limits).
HUBSPOT_DEFAULT_DAILY_LIMIT = 650_000
#: Mailchimp's documented cap on simultaneous connections per API key.
MAILCHIMP_MAX_CONNECTIONS = 10
#: Share of uploaded people Meta matches to an account. Real customer-file match rates are commonly
#: 40-75%; 0.7 keeps the sandbox honest (a count is never the upload's size) without being pessimistic.
META_MATCH_RATE = 0.7
#: Seconds before an upload changes Meta's reported size. Meta documents "up to 24 hours"; the sandbox
#: defaults to 0 so a demo that runs two days back to back in minutes reads the counts its syncs made,
#: and tests of the "not yet applied" path set a delay of their own.
META_APPLY_DELAY_SECONDS = 0.0


def _default_faults() -> dict[str, VendorFaults]:
    return {vendor: VendorFaults() for vendor in VENDORS} | {
        "hubspot": VendorFaults(rate_limit=HUBSPOT_DEFAULT_RATE_LIMIT, daily_limit=HUBSPOT_DEFAULT_DAILY_LIMIT)
    }


@dataclass(frozen=True)
class Credentials:
    """The credentials each vendor accepts; anything else is answered with the vendor's 401.

    :param mailchimp_api_keys: API keys, sent as the HTTP Basic password (any user name).
    :param hubspot_tokens: private-app or OAuth tokens, sent as ``Authorization: Bearer``.
    :param meta_access_tokens: Graph API ``access_token`` values.
    :param webhook_secret: HMAC-SHA256 key of the ``X-Segprovider-Signature`` header.
    """

    mailchimp_api_keys: tuple[str, ...] = (DEFAULT_MAILCHIMP_API_KEY,)
    hubspot_tokens: tuple[str, ...] = (DEFAULT_HUBSPOT_TOKEN,)
    meta_access_tokens: tuple[str, ...] = (DEFAULT_META_ACCESS_TOKEN,)
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Credentials:
        """Build from JSON; lists become tuples, missing keys keep their defaults.

        :param data: keys among this class's fields.
        """
        _reject_unknown(data, cls, "credentials")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == "webhook_secret":
                values[name] = str(value)
            elif isinstance(value, str) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"credentials.{name} must be a list of strings, got {value!r}")
            else:
                values[name] = tuple(value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, the inverse of :meth:`from_dict`."""
        return {
            "mailchimp_api_keys": list(self.mailchimp_api_keys),
            "hubspot_tokens": list(self.hubspot_tokens),
            "meta_access_tokens": list(self.meta_access_tokens),
            "webhook_secret": self.webhook_secret,
        }


@dataclass(frozen=True)
class SandboxConfig:
    """Everything the sandbox can be told at start-up.

    :param credentials: the credentials accepted.
    :param faults: fault settings per vendor (``mailchimp``, ``hubspot``, ``meta``, ``webhook``);
        by default only HubSpot's documented 190 requests / 10 s window is on.
    :param seed: seed of the fault injection's random sequences.
    :param mailchimp_max_connections: simultaneous requests per Mailchimp API key before 429.
    :param meta_match_rate: share (0 to 1) of valid hashes Meta matches to an account; which ones is decided
        by the hash itself, so the same person matches or not in every run and every audience.
    :param meta_apply_delay_seconds: seconds before an upload shows in an audience's reported size and its
        session reads ``completed``.
    """

    credentials: Credentials = field(default_factory=Credentials)
    faults: Mapping[str, VendorFaults] = field(default_factory=_default_faults)
    seed: int = 0
    mailchimp_max_connections: int = MAILCHIMP_MAX_CONNECTIONS
    meta_match_rate: float = META_MATCH_RATE
    meta_apply_delay_seconds: float = META_APPLY_DELAY_SECONDS

    def __post_init__(self) -> None:
        unknown = sorted(set(self.faults) - set(VENDORS))
        if unknown:
            raise ValueError(f"faults for unknown vendor(s) {unknown}; vendors are {list(VENDORS)}")
        if self.mailchimp_max_connections < 1:
            raise ValueError(f"mailchimp_max_connections must be at least 1, got {self.mailchimp_max_connections}")
        if not 0.0 <= self.meta_match_rate <= 1.0:
            raise ValueError(f"meta_match_rate must be a fraction between 0 and 1, got {self.meta_match_rate}")
        if self.meta_apply_delay_seconds < 0:
            raise ValueError(f"meta_apply_delay_seconds must not be negative, got {self.meta_apply_delay_seconds}")
        # Vendors left out inject nothing rather than disappearing from the runtime config.
        object.__setattr__(self, "faults", {vendor: self.faults.get(vendor, VendorFaults()) for vendor in VENDORS})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxConfig:
        """Build from JSON; a vendor's fault keys override that vendor's defaults.

        :param data: keys among ``credentials``, ``faults``, ``seed``, ``mailchimp_max_connections``,
            ``meta_match_rate``, ``meta_apply_delay_seconds``.
        """
        _reject_unknown(data, cls, "sandbox config")
        defaults = _default_faults()
        faults = dict(defaults)
        for vendor, settings in (data.get("faults") or {}).items():
            if vendor not in defaults:
                raise ValueError(f"faults for unknown vendor '{vendor}'; vendors are {list(VENDORS)}")
            faults[vendor] = VendorFaults.from_dict(settings, base=defaults[vendor])
        return cls(
            credentials=Credentials.from_dict(data.get("credentials") or {}),
            faults=faults,
            seed=int(data.get("seed", 0)),
            mailchimp_max_connections=int(data.get("mailchimp_max_connections", MAILCHIMP_MAX_CONNECTIONS)),
            meta_match_rate=float(data.get("meta_match_rate", META_MATCH_RATE)),
            meta_apply_delay_seconds=float(data.get("meta_apply_delay_seconds", META_APPLY_DELAY_SECONDS)),
        )

    @classmethod
    def from_json_file(cls, path: str | Path) -> SandboxConfig:
        """Read a JSON config file.

        :param path: the file.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):  # a ValueError, like every other problem of the file, for main() to print
            raise ValueError(f"{path}: the sandbox config must be a JSON object")  # noqa: TRY004
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON form, the inverse of :meth:`from_dict`."""
        return {
            "credentials": self.credentials.to_dict(),
            "faults": {vendor: settings.to_dict() for vendor, settings in self.faults.items()},
            "seed": self.seed,
            "mailchimp_max_connections": self.mailchimp_max_connections,
            "meta_match_rate": self.meta_match_rate,
            "meta_apply_delay_seconds": self.meta_apply_delay_seconds,
        }


def _reject_unknown(data: Mapping[str, Any], cls: type, what: str) -> None:
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {what} key(s) {unknown}; expected some of {sorted(known)}")
