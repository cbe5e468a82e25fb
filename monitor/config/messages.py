"""Turning pydantic's validation errors into one line each: key, value, what is allowed,
and the environment variable that set it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic_core import ErrorDetails

from monitor.config.fields import hide_password
from monitor.config.settings import Settings


def _key(loc: Sequence[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _show(value: object, key: str) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if key.endswith("database.url") and isinstance(value, str):
        value = hide_password(value)
    text = repr(value) if not isinstance(value, date) else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _allowed_keys(loc: Sequence[int | str]) -> list[str]:
    """The keys of the table at ``loc`` (for 'unknown key' messages)."""
    model: type[BaseModel] | None = Settings
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin is Annotated:
        return _model_in(get_args(annotation)[0])
    if origin in (list, Union) or (origin is not None and str(origin) == "types.UnionType"):
        for argument in get_args(annotation):
            found = _model_in(argument)
            if found is not None:
                return found
    return None


def _choices(expected: str) -> str:
    return ", ".join(re.findall(r"'([^']*)'", expected)) or expected


_PHRASES: dict[str, str] = {
    # pydantic error type: what follows the value; {name} is filled from the error's context
    "int_parsing": "is not a whole number",
    "int_type": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_parsing": "is not a number",
    "float_type": "is not a number",
    "bool_parsing": "is not true or false",
    "string_type": "is not a string; use quotes",
    "list_type": "is not a list; use [...]",
    "model_type": "is not a table; use [group] or {{key = value}}",
    "model_attributes_type": "is not a table; use [group] or {{key = value}}",
    "dict_type": "is not a table; use {{key = value}}",
    "date_parsing": "is not a date; use YYYY-MM-DD",
    "date_from_datetime_parsing": "is not a date; use YYYY-MM-DD",
    "date_from_datetime_inexact": "is not a date; use YYYY-MM-DD",
    "date_type": "is not a date; use YYYY-MM-DD",
    "path_type": "is not a path",
    "string_too_short": "is empty; give a name",
    "string_too_long": "is too long; use at most {max_length} characters",
    "greater_than_equal": "is too small; use {ge} or more",
    "greater_than": "is too small; use more than {gt}",
    "less_than_equal": "is too large; use {le} or less",
    "less_than": "is too large; use less than {lt}",
    "enum": "is not allowed; use one of {choices}",
    "literal_error": "is not allowed; use one of {choices}",
}


def describe_error(error: ErrorDetails, env_keys: Mapping[str, str]) -> str:
    """One line: key, value, what is allowed (and the variable, if it came from the environment)."""
    loc = error["loc"]
    key = _key(loc) or "settings"
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        line = f"{key}: unknown key; allowed keys: {', '.join(allowed)}"
    elif kind == "missing":
        line = f"{key}: missing; this key is required"
    elif kind == "config":
        line = f"{key}: {ctx['message']}"
    else:
        phrase = _PHRASES.get(kind)
        if phrase is None:
            said = f"is not valid: {error['msg']}"
        else:
            limits = {
                name: int(value) if isinstance(value, float) and value.is_integer() else value
                for name, value in ctx.items()
            }
            said = phrase.format(**limits, choices=_choices(str(ctx.get("expected", ""))))
        line = f"{key}: {_show(error['input'], key)} {said}"
    names = _origins(tuple(str(part) for part in loc), env_keys)
    return f"{line} (from {', '.join(names)})" if names else line


def _origins(loc: tuple[str, ...], env_keys: Mapping[str, str]) -> list[str]:
    """The variables that set this key, a table holding it, or keys inside it."""
    for length in range(len(loc), 0, -1):
        name = env_keys.get(".".join(loc[:length]))
        if name is not None:
            return [name]
    prefix = ".".join(loc) + "."
    return sorted(name for key, name in env_keys.items() if key.startswith(prefix))
