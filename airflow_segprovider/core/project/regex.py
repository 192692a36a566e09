"""The regular expressions ``matches`` accepts: the subset every supported warehouse evaluates alike.

DuckDB and BigQuery use RE2, PostgreSQL its POSIX "advanced" engine, Snowflake POSIX
with Perl escapes. Their common ground is literals, ``.``, bracket character classes,
``^``/``$`` anchors (start and end of the text), quantifiers
(``* + ? {m,n}``, lazy forms included: laziness cannot change whether a match exists),
alternation and groups. Lookarounds, backreferences, inline flags, atomic groups,
``\\b \\A \\Z`` and the class escapes ``\\d \\w \\s`` (ASCII-only in RE2, Unicode elsewhere) behave differently or not at all in some of them, so validation
rejects them instead of letting the same rule mean different things per warehouse.
"""

from __future__ import annotations

import re

try:  # Python 3.11+
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_parse  # type: ignore[no-redef]

_REJECTED_OPCODES = {
    "ASSERT": "lookahead/lookbehind",
    "ASSERT_NOT": "negative lookahead/lookbehind",
    "GROUPREF": "backreference",
    "GROUPREF_EXISTS": "conditional group",
    "ATOMIC_GROUP": "atomic group",
    "POSSESSIVE_REPEAT": "possessive quantifier",
}
_REJECTED_AT = {
    "AT_BOUNDARY": r"word boundary \b",
    "AT_NON_BOUNDARY": r"\B",
    "AT_BEGINNING_STRING": r"\A",
    "AT_END_STRING": r"\Z",
}


def check_portable_regex(pattern: str) -> None:
    """Raise ValueError naming the construct when ``pattern`` is outside the portable subset."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    if re.search(r"\(\?(?!:)", pattern):
        raise ValueError(f"{pattern!r} uses an inline '(?...)' construct (flags, named groups, lookaround); "
                         "only plain groups '(...)' and '(?:...)' work the same in every warehouse")
    _walk(sre_parse.parse(pattern), pattern)


_CLASS_ESCAPES = {"CATEGORY_DIGIT": "\\d", "CATEGORY_NOT_DIGIT": "\\D", "CATEGORY_WORD": "\\w",
                  "CATEGORY_NOT_WORD": "\\W", "CATEGORY_SPACE": "\\s", "CATEGORY_NOT_SPACE": "\\S"}


def _walk(parsed, pattern: str) -> None:
    for opcode, argument in parsed:
        name = str(opcode)
        if name == "IN":
            for item_opcode, item in argument:
                if str(item_opcode) == "CATEGORY" and str(item) in _CLASS_ESCAPES:
                    escape = _CLASS_ESCAPES[str(item)]
                    raise ValueError(f"{pattern!r} uses {escape}, which matches non-ASCII letters in some warehouses "
                                     "and not in others; write the class out, e.g. [0-9], [A-Za-z0-9_] or [ \\t]")
        if name in _REJECTED_OPCODES:
            raise ValueError(f"{pattern!r} uses a {_REJECTED_OPCODES[name]}, which not every warehouse supports")
        if name == "AT" and str(argument) in _REJECTED_AT:
            raise ValueError(f"{pattern!r} uses {_REJECTED_AT[str(argument)]}, which means different things in "
                             "different warehouses; use ^ and $ (start and end of the text)")
        for child in _children(argument):
            _walk(child, pattern)


def _children(argument):
    if isinstance(argument, sre_parse.SubPattern):
        yield argument
    elif isinstance(argument, (list, tuple)):
        for item in argument:
            if isinstance(item, (sre_parse.SubPattern, list, tuple)):
                yield from _children(item)


__all__ = ["check_portable_regex"]
