"""Bases of the contract's models and the one translation of validation errors into the
4xx messages that REST, the CLI and ``ll.jobs`` show.

pydantic's own messages ("Input should be a valid integer") do not name the field the way a
person typed it, so :func:`parse` turns the first error into one sentence that does: "'retries'
must be an integer, got string". Every caller says the same thing about the same mistake.
"""

from __future__ import annotations

import math
import typing
from typing import Any, TypeVar

import annotated_types
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

M = TypeVar("M", bound=BaseModel)


class RequestError(ValueError):
    """A request that cannot be accepted; ``status`` is the HTTP answer (400 unless said)."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(RequestError):
    """The thing named in the request does not exist (404)."""

    status = 404


class Conflict(RequestError):
    """The request is well formed but the resource's state refuses it (409)."""

    status = 409


class Unavailable(Exception):
    """A service the request needs cannot be reached now: the lab's database, or its
    cluster's scheduler. REST answers 503 with this message, the CLI prints it as one line
    and exits 1; the same request may work once the service is back.

    Not a :class:`RequestError` (a ``ValueError``): the request was fine, and code that turns
    ``ValueError`` into a 400 or 409 must not catch this.
    """

    status = 503


class Request(BaseModel):
    """A request body or query: strict types (``"3"`` is not an integer), no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class View(BaseModel):
    """A response body. Built from store records, so types are coerced, not policed."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)


def json_type(value: Any) -> str:
    """The JSON name of a value's type, as messages say it."""
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def parse(model: type[M], body: Any, context: dict[str, Any] | None = None) -> M:
    """``body`` validated as ``model`` (with the server's limits in ``context``), or a
    :class:`RequestError` naming the field."""
    if not isinstance(body, dict):
        raise RequestError(f"the request must be a JSON object, not {json_type(body)}")
    # a field is named as the request spells it: its alias (``from``) where it has one
    fields = {f.alias or name for name, f in model.model_fields.items()}
    unknown = sorted(str(k) for k in body if k not in fields)
    if unknown:
        raise RequestError(
            f"unknown field(s) {', '.join(unknown)}; accepted: {', '.join(sorted(fields))}"
        )
    try:
        return model.model_validate(body, context=context)
    except ValidationError as exc:
        raise RequestError(describe(model, exc.errors()[0])) from None


def parse_query(model: type[M], arguments: dict[str, list[bytes]]) -> M:
    """Query arguments (strings) validated as ``model``: integers are parsed from their text,
    the last value of a repeated argument wins, unknown arguments are ignored (as browsers and
    proxies add their own)."""
    values: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        name = field.alias or name  # ``?from=``: a field named ``start`` with that alias
        raw = arguments.get(name)
        if not raw:
            continue
        text = raw[-1].decode("utf-8", errors="replace")
        if _accepts(field, bool):
            flag = {"true": True, "1": True, "false": False, "0": False}.get(text.lower())
            if flag is None:
                raise RequestError(f"'{name}' must be true or false, got {text!r}")
            values[name] = flag
        elif _accepts(field, int) and not _accepts(field, str):
            try:
                values[name] = int(text)
            except ValueError:
                raise RequestError(f"'{name}' must be an integer, got {text!r}") from None
        else:
            values[name] = text
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise RequestError(describe(model, exc.errors()[0])) from None


def _accepts(field: FieldInfo, kind: type) -> bool:
    annotation = field.annotation
    return annotation is kind or kind in typing.get_args(annotation)


def _bounds(field: FieldInfo | None) -> tuple[Any, Any]:
    """The field's ``Field(ge=..., le=...)`` limits (the contract uses no other kind)."""
    low = high = None
    for item in field.metadata if field is not None else ():
        if isinstance(item, annotated_types.Ge):
            low = item.ge
        elif isinstance(item, annotated_types.Le):
            high = item.le
    return low, high


def _choices(annotation: Any) -> list[str]:
    """The values of the first ``Literal`` inside an annotation (``list[Literal[...]]``...)."""
    if typing.get_origin(annotation) is typing.Literal:
        return [str(v) for v in typing.get_args(annotation)]
    for arg in typing.get_args(annotation):
        found = _choices(arg)
        if found:
            return found
    return []


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def describe(model: type[BaseModel], error: dict[str, Any]) -> str:
    """One sentence for one pydantic error, naming the field as the request spelled it."""
    loc = error.get("loc", ())
    # a nested field is named by its path ('adapt.maximum'); list positions are left out
    path = [str(part) for part in loc if not isinstance(part, int)]
    name = ".".join(path) if path else "body"
    field = model.model_fields.get(name)
    kind = error["type"]
    value = error.get("input")
    got = json_type(value)
    in_list = len(loc) > 1 and isinstance(loc[1], int)
    ctx = error.get("ctx") or {}
    if kind == "missing":
        about = f" ({field.description})" if field is not None and field.description else ""
        return f"missing field '{name}'{about}"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"'{name}' must be an integer, got {got}"
    if kind in ("float_type", "float_parsing"):
        if isinstance(value, int) and not isinstance(value, bool):  # too large for a float
            kind = "less_than_equal"
        else:
            return f"'{name}' must be a number, got {got}"
    if kind == "finite_number":
        return f"'{name}' must be a finite number"
    if kind == "bool_type":
        return f"'{name}' must be a boolean, got {got}"
    if kind in ("dict_type", "model_type"):
        return f"'{name}' must be a JSON object of name: value, got {got}"
    if kind in ("list_type", "tuple_type"):
        return f"'{name}' must be a list, got {got}"
    if kind in ("string_type", "string_too_short"):
        if in_list:
            return f"'{name}' must be a list of strings, got {got} {value!r}"
        metadata = field.metadata if field is not None else ()
        if any(getattr(m, "min_length", 0) for m in metadata):
            return f"'{name}' must be a non-empty string, got {got}"
        return f"'{name}' must be a string, got {got}"
    if kind == "string_too_long":
        if in_list:
            return f"'{name}' takes strings of at most {ctx.get('max_length')} characters"
        return f"'{name}' is longer than {ctx.get('max_length')} characters"
    if kind == "too_long":
        return f"'{name}' takes at most {ctx.get('max_length')} items"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        low, high = _bounds(field)
        shown = value if isinstance(value, int) or math.isfinite(value) else str(value)
        if isinstance(shown, int) and len(str(shown)) > 30:
            shown = f"a {len(str(shown))}-digit number"
        if low is not None and high is not None:
            return f"'{name}' must be between {_number(low)} and {_number(high)}, got {shown}"
        limit = ctx.get("ge", ctx.get("gt", ctx.get("le", ctx.get("lt"))))
        side = "at least" if kind.startswith("greater") else "at most"
        return f"'{name}' must be {side} {_number(limit)}, got {shown}"
    if kind == "literal_error":
        choices = ", ".join(_choices(field.annotation if field else None))
        if in_list:
            return f"'{name}' may hold only {choices}, got {value!r}"
        return f"'{name}' must be one of {choices}, got {value!r}"
    if kind == "extra_forbidden":
        return f"unknown field '{name}'"
    if kind == "value_error":  # a validator's own message
        return str(ctx.get("error", error.get("msg", "")))
    return f"'{name}': {error.get('msg', 'invalid value')}"
