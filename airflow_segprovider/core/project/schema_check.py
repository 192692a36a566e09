"""Pass 2 of loading a project: each file against the JSON Schema shipped in ``schema/project.schema.json``.

Each violation is reported as SEG010 with a readable message and fix, located at the offending
key or value; a file that fails is left out of the semantic pass.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import jsonschema

if TYPE_CHECKING:
    from airflow_segprovider.core.project.items import IssueList
    from airflow_segprovider.core.project.yaml_source import SourceDocument


@lru_cache(maxsize=1)
def project_file_schema() -> dict[str, Any]:
    """The JSON Schema every project file is validated against."""
    text = resources.files("airflow_segprovider.core.project").joinpath("schema/project.schema.json").read_text()
    return json.loads(text)


def _schema_message(error: jsonschema.ValidationError) -> tuple[str, str]:
    """A readable message and fix for one schema violation."""
    validator = error.validator
    if validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = _unknown_keys(error) or [error.message]
        hint = f"allowed keys here: {', '.join(allowed)}" if allowed else "remove it"
        return f"unknown key {', '.join(repr(e) for e in extra)}", hint
    if validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        return f"missing required key {missing[0]!r}" if missing else error.message, "add it"
    if validator == "oneOf" and "all" in json.dumps(error.validator_value):
        return ("a rule must be exactly one of: all, any, not, attribute, event, segment",
                "write one condition per list item; combine several with 'all:' or 'any:'")
    if validator == "enum":
        return (f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}",
                "use one of the listed values")
    if validator == "pattern":
        return (f"{error.instance!r} is not a valid name",
                "names are lowercase letters, digits and underscores, starting with a letter")
    if validator == "type":
        return f"{error.instance!r} should be of type {error.validator_value}", ""
    if validator == "const":
        return f"{error.instance!r} must be {error.validator_value!r}", ""
    if validator in ("minItems", "minProperties"):
        count = error.validator_value
        return (f"needs at least {count} {'item' if validator == 'minItems' else 'entry'}{'s' if count != 1 else ''}, "
                f"has {len(error.instance)}", "add the missing entries")
    if validator == "multipleOf":
        return (f"{error.instance!r} is not a multiple of {error.validator_value}",
                f"round it to steps of {error.validator_value}")
    return error.message, ""


def _decimal_multiple_of(validator: Any, step: Any, instance: Any, schema: Any) -> Any:
    """``multipleOf`` on the number as written; jsonschema divides floats and rejects 33.33 as a multiple of 0.01."""
    if not validator.is_type(instance, "number"):
        return
    quotient = Decimal(str(instance)) / Decimal(str(step))
    if quotient != quotient.to_integral_value():
        yield jsonschema.ValidationError(f"{instance!r} is not a multiple of {step}")


_ProjectFileValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"multipleOf": _decimal_multiple_of})


def _unknown_keys(error: jsonschema.ValidationError) -> list[str]:
    """Keys an ``additionalProperties: false`` object does not allow, in the order they were written."""
    if not isinstance(error.instance, dict):
        return []
    allowed = error.schema.get("properties", {})
    return [key for key in error.instance if key not in allowed]


def schema_check(doc: SourceDocument, issues: IssueList) -> bool:
    """Validate one file against the schema; every violation is reported as SEG010. True when it is valid."""
    validator = _ProjectFileValidator(project_file_schema())
    errors = sorted(validator.iter_errors(doc.data), key=lambda e: [str(p) for p in e.absolute_path])
    for error in errors:
        path = tuple(error.absolute_path)
        message, hint = _schema_message(error)
        unknown = _unknown_keys(error) if error.validator == "additionalProperties" else []
        # point at the offending key itself, not at the start of the mapping holding it
        location = doc.locate_key((*path, unknown[0])) if unknown else doc.locate(path)
        issues.add("SEG010", message, location, hint)
    return not errors
