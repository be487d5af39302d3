"""Domain errors: services raise these without knowing about HTTP; `http` renders them as problem+json."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    """One invalid input: a JSON pointer into the body (or a parameter name) and what is wrong with it."""

    pointer: str
    detail: str
    location: str = "body"

    def as_dict(self) -> dict[str, str]:
        found = {"pointer": self.pointer, "detail": self.detail}
        return found if self.location == "body" else found | {"in": self.location}


class DomainError(Exception):
    """Base of errors a client can act on. `status` is the HTTP status it maps to."""

    status = 400
    title = "Bad Request"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.extra = extra


class InvalidInput(DomainError):
    status = 400
    title = "Invalid input"


class NotFound(DomainError):
    status = 404
    title = "Not Found"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class PreconditionFailed(DomainError):
    status = 412
    title = "Precondition Failed"


class Unprocessable(DomainError):
    status = 422
    title = "Unprocessable Content"


class PreconditionRequired(DomainError):
    status = 428
    title = "Precondition Required"


def _token(key: object) -> str:
    """A JSON pointer reference token (RFC 6901): '~' and '/' in a key are escaped."""
    return str(key).replace("~", "~0").replace("/", "~1")


def field_errors(messages: Any, pointer: str = "", location: str = "body") -> list[FieldError]:
    """Flatten marshmallow-style nested messages ({field: [message]} at any depth) into one error per message."""
    if isinstance(messages, Mapping):
        return [error for key, value in messages.items()
                for error in field_errors(value, pointer if key == "_schema" else f"{pointer}/{_token(key)}",
                                          location)]
    if isinstance(messages, list | tuple):
        return [error for message in messages for error in field_errors(message, pointer, location)]
    return [FieldError(pointer or "/", str(messages), location)]
