"""Every (route, method) of the app's URL map, with a URL that reaches it: the basis of the matrix tests."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Flask

from service.http import body_media_types

SKIPPED_METHODS = {"HEAD", "OPTIONS"}


@dataclass(frozen=True)
class Route:
    rule: str
    method: str
    endpoint: str
    handler: Callable[..., Any]
    url: str

    @property
    def roles(self) -> frozenset[Any] | None:
        return getattr(self.handler, "roles", None)

    @property
    def body_types(self) -> set[str]:
        return body_media_types(self.handler)

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


def _fill(rule: Any) -> str:
    """A URL for the rule: random UUIDs for ids (so nothing is found), a file name for paths."""
    values = {name: str(uuid.uuid4()) if type(rule._converters[name]).__name__ == "UUIDConverter" else "x.json"
              for name in rule.arguments}
    return re.sub(r"<(?:[a-z]+:)?([A-Za-z_]+)>", lambda m: values[m.group(1)], rule.rule)


def all_routes(app: Flask) -> Iterator[Route]:
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        for method in sorted((rule.methods or set()) - SKIPPED_METHODS):
            view_class = getattr(view, "view_class", None)
            handler = getattr(view_class, method.lower()) if view_class else view
            yield Route(rule.rule, method, rule.endpoint, handler, _fill(rule))
