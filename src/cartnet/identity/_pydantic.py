"""Let identifier classes be pydantic field types: parsed from text, serialised as text.

A schema with ``chain_of_identity: ChainOfIdentityId`` then accepts the string a scanner
produced (and an instance), reports our precise parse error under the field's path, and
writes the identifier back as its canonical string in JSON and in ``model_dump``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pydantic_core import CoreSchema, core_schema

T = TypeVar("T")


def string_schema(cls: type[T], parse: Callable[[str], T]) -> CoreSchema:
    """A pydantic core schema for ``cls``: an instance, or a string that ``parse`` reads."""

    def instance_or_text(value: object) -> T:
        # One function rather than a union of schemas, so that a bad string yields one
        # error (ours) and not also "should be an instance of ...".
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            return parse(value)
        raise ValueError(f"expected text or a {cls.__name__}, got {type(value).__name__}")

    return core_schema.json_or_python_schema(
        json_schema=core_schema.no_info_after_validator_function(parse, core_schema.str_schema()),
        python_schema=core_schema.no_info_plain_validator_function(instance_or_text),
        serialization=core_schema.plain_serializer_function_ser_schema(str),
    )
