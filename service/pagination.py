"""Cursor pagination over a stable order, with a `Link: <...>; rel="next"` header."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
from flask import request
from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from service.db import db
from service.errors import FieldError, InvalidInput
from service.schemas import CamelSchema

MAX_LIMIT = 200
CURSOR_EXAMPLE = "WyIyMDI2LTExLTIwVDEzOjMwOjAwKzAwOjAwIiwgIjVmMGM4YTRlIl0"


class PageArgs(CamelSchema):
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, MAX_LIMIT),
                              metadata={"description": f"Items per page (at most {MAX_LIMIT})"})
    cursor = ma.fields.String(validate=ma.validate.Length(max=200),
                              metadata={"description": "Opaque cursor from the previous page (`nextCursor`, or the "
                                                       "`Link` header)", "example": CURSOR_EXAMPLE})


def page_schema(item: type[ma.Schema], name: str) -> type[ma.Schema]:
    """A page of `item`s: the items and the cursor of the next page (also in the Link header)."""
    return type(name, (CamelSchema,), {
        "__doc__": "One page of a list, in a stable order.",
        "items": ma.fields.List(ma.fields.Nested(item), required=True, metadata={"description": "This page's items"}),
        "next_cursor": ma.fields.String(allow_none=True, required=True, metadata={
            "description": "Send as `cursor` for the next page; null on the last page", "example": CURSOR_EXAMPLE}),
    })


LINK_HEADER = {"description": 'RFC 8288 link to the next page: `<url>; rel="next"`', "schema": {"type": "string"}}


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None

    def headers(self) -> dict[str, str]:
        if self.next_cursor is None:
            return {}
        args = request.args.to_dict() | {"cursor": self.next_cursor}
        return {"Link": f'<{request.base_url}?{urlencode(args)}>; rel="next"'}


def _encode(values: tuple[Any, ...]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, dt.datetime) else v if isinstance(v, int) else str(v)
                      for v in values]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, types: tuple[type, ...]) -> tuple[Any, ...]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(values, list) or len(values) != len(types):
            raise ValueError("wrong shape")
        return tuple(dt.datetime.fromisoformat(v) if t is dt.datetime else t(v) for t, v in zip(types, values,
                                                                                               strict=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidInput("The cursor is not one this service issued.",
                           errors=[FieldError("/cursor", "Not a valid cursor.", "query")]) from exc


def paginate(session: Session, stmt: Select[Any], order: tuple[InstrumentedAttribute[Any], ...], limit: int,
             cursor: str | None) -> Page:
    """One page of `stmt` in the order of the `order` columns (together unique), starting after `cursor`."""
    if cursor:
        stmt = stmt.where(tuple_(*order) > tuple_(*_decode(cursor, tuple(c.type.python_type for c in order))))
    rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], _encode(tuple(getattr(last, column.key) for column in order)))


Touch = Callable[[list[Any], int], None]
Show = Callable[[list[Any]], list[Any]]


def paginated(*order: InstrumentedAttribute[Any], link: bool = True, then: Touch | None = None,
              shown: Show | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a list view: it returns the statement of everything it may list (with the filters it was given);
    this answers one page of it in the order of the `order` columns (together unique), from its `limit` and `cursor`
    arguments, with the Link header of the next page (unless `link` is False: a search whose cursor travels in the
    body). `then` is given the page's items and the limit asked (to say what was touched); `shown` turns the page's
    items into what the response shows (the items with what the page adds to them)."""

    def declare(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def page_of(*args: Any, limit: int, cursor: str | None = None, **kwargs: Any) -> Any:
            page = paginate(db.session, view(*args, **kwargs), order, limit, cursor)
            if then is not None:
                then(page.items, limit)
            if shown is not None:
                page = Page(shown(page.items), page.next_cursor)
            return (page, page.headers()) if link else page

        return page_of

    return declare
