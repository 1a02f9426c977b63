"""Shared manifest rules: identifier and token shapes, and field-located errors.

Every block of the manifest checks names and labels the same way; a cross-field rule
reports the field to change, not the model root.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

MAX_ID_LENGTH = 63
DAEMON_HASH_DIGITS = 10
MAX_MANIFEST_BYTES = 256 * 1024
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# Free-form names a node reports (label keys, regions, sensors, probe targets): printable,
# no spaces, short enough to read in a rejection reason.
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,62}")
_TOKEN_RULE = "1-63 characters of letters, digits, '.', '_', '/', ':', '-'"

Mode = Literal["replicated", "daemon"]
Spread = Literal["node", "site"]
Strategy = Literal["spread", "binpack"]


def check_tokens(values: list[str], what: str) -> list[str]:
    for value in values:
        if _TOKEN.fullmatch(value) is None:
            raise ValueError(f"{what} {value!r} is not valid: {_TOKEN_RULE}")
    if len(set(values)) != len(values):
        article = "an" if what[:1] in "aeiou" else "a"  # "an accelerator", "a site"
        raise ValueError(f"lists {article} {what} more than once")
    return values


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if _TOKEN.fullmatch(key) is None:
            raise ValueError(f"label key {key!r} is not valid: {_TOKEN_RULE}")
        if len(value) > 63:
            raise ValueError(f"label {key!r}: value longer than 63 characters")
    return labels


def field_error(model: str, loc: tuple[str, ...], reason: str, value: Any) -> ValidationError:
    # A cross-field rule is checked after the model is built, where pydantic would report it
    # at the model's root; raising a ValidationError with our own location keeps the field
    # path ("replicas", "name") that tells the author what to change.
    detail = InitErrorDetails(
        type=PydanticCustomError("manifest_rule", reason), loc=loc, input=value
    )
    return ValidationError.from_exception_data(model, [detail])
