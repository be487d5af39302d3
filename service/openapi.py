"""What the OpenAPI document says beyond what marshmallow and flask-smorest derive, so that a client generator makes a
pleasant client: code lists as named components reused by reference, an operationId on every operation, examples
on every body, response and parameter, and schema descriptions taken from the schemas' docstrings.

Everything here is derived by convention, so a new route gets it without asking; a view overrides a poor derived
name with `@blp.doc(operationId="...")`, a schema gives a better example than the derived one with `EXAMPLE`."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter


@dataclass(frozen=True)
class Codes:
    """A named code list: one schema component that every field holding one of these codes refers to."""

    name: str
    values: tuple[Any, ...]
    description: str
    # Names for generated enum members where a value is no identifier (12to15 would become VALUE_1).
    varnames: tuple[str, ...] = ()

    @classmethod
    def of_terms(cls, name: str, terms: Mapping[Any, Any], description: str, prefix: str = "") -> Codes:
        """A list of the taxonomy's terms, each code explained by its English and Dutch labels; codes that start
        with a digit get member names starting with `prefix` (12to15: AGE_12_TO_15)."""
        lines = "\n".join(f"- `{code}`: {term.label_en} ({term.label_nl})" for code, term in terms.items())
        return cls(name, tuple(terms), f"{description}\n\n{lines}", member_names(tuple(terms), prefix))

    @classmethod
    def of_enum(cls, codes: type[enum.Enum]) -> Codes:
        return cls(codes.__name__, tuple(member.value for member in codes), codes.__dict__.get("__doc__") or "")

    def component(self) -> dict[str, Any]:
        kind = "integer" if all(isinstance(value, int) for value in self.values) else "string"
        schema = {"type": kind, "enum": list(self.values), "description": self.description}
        return schema | ({"x-enum-varnames": list(self.varnames)} if self.varnames else {})


def member_names(values: Iterable[Any], prefix: str) -> tuple[str, ...]:
    """Names for generated enum members when some value is no identifier; otherwise none (the values serve)."""
    values = tuple(values)
    if all(isinstance(value, str) and value[:1].isalpha() for value in values):
        return ()
    words = [re.findall(r"[A-Z]?[a-z]+|[A-Z]+|[0-9]+", str(value)) for value in values]
    return tuple("_".join(([prefix] if not value[0].isalpha() else []) + parts).upper()
                 for value, parts in zip(map(str, values), words, strict=True))


def code(codes: Codes, **kwargs: Any) -> ma.fields.String:
    """A string field holding one of `codes`: refused on load otherwise, documented as a reference to the list."""
    metadata = {"codes": codes, **kwargs.pop("metadata", {})}
    return ma.fields.String(validate=ma.validate.OneOf(list(codes.values)), metadata=metadata, **kwargs)


def pascal_case(name: str) -> str:
    return name[:1].upper() + name[1:]


def codes_of(field: ma.fields.Field) -> Codes | None:
    """The code list a field holds: declared (`code`), a Python enum, or a OneOf named after the field."""
    if "codes" in field.metadata:
        return field.metadata["codes"]
    if isinstance(field, ma.fields.Enum):
        return Codes.of_enum(field.enum)
    for validator in field.validators:
        if isinstance(validator, ma.validate.OneOf):
            return Codes(pascal_case(field.data_key or field.name or ""), tuple(validator.choices),
                         field.metadata.get("description", ""))
    return None


# What a property keeps beside the reference to its code list.
BESIDE_A_REFERENCE = ("description", "default", "example", "examples", "readOnly", "writeOnly", "deprecated")


class CodeListConverter(OpenAPIConverter):
    """Fields holding codes refer to one component per code list instead of repeating the values inline."""

    def field2property(self, field: ma.fields.Field) -> dict[str, Any]:
        prop = super().field2property(field)
        codes = codes_of(field)
        if codes is None:
            return prop
        schemas = self.spec.components.schemas
        if codes.name not in schemas:
            self.spec.components.schema(codes.name, codes.component())
        elif schemas[codes.name].get("enum") != list(codes.values):
            raise ValueError(f"two code lists are named {codes.name}: give one of them another name (Codes)")
        types = prop.get("type", [])
        nullable = "null" in (types if isinstance(types, list) else [types]) or None in prop.get("enum", [])
        reference = {"$ref": f"#/components/schemas/{codes.name}"}
        kept = {key: prop[key] for key in BESIDE_A_REFERENCE if key in prop and prop[key] is not None}
        return kept | ({"anyOf": [reference, {"type": "null"}]} if nullable else reference)


class DocumentPlugin(MarshmallowPlugin):
    Converter = CodeListConverter


# Words left out of a derived operationId, and the words before which it ends ("Add a location with ...").
ARTICLES = {"a", "an", "the", "its"}
PREPOSITIONS = {"with", "at", "on", "per", "of", "for", "from", "up", "in", "by", "and", "to"}


def operation_id(summary: str) -> str:
    """A camelCase operationId from an operation's summary: "Correct an incident" is correctIncident."""
    words = []
    for word in re.findall(r"[A-Za-z0-9]+(?:'s)?", summary):
        word = word.removesuffix("'s")
        if word.lower() in PREPOSITIONS and words:
            break
        if word.lower() not in ARTICLES:
            words.append(word.lower())
    return words[0] + "".join(pascal_case(word) for word in words[1:])


FORMAT_EXAMPLES = {
    "uuid": "5f0c8a4e-2b1d-4c3e-9f6a-7d8e9a0b1c2d",
    "date-time": "2026-11-02T14:30:00+01:00",
    "date": "2026-11-01",
    "uri": "https://register.example.org/v1/incidents",
    "email": "register@example.org",
}
TYPE_EXAMPLES = {"string": "text", "integer": 1, "number": 1.5, "boolean": True, "null": None}


def example_of(schema: Mapping[str, Any], schemas: Mapping[str, Any], *, writing: bool, depth: int = 0) -> Any:
    """An example of `schema` built from its own and its parts' examples, enums, defaults and formats.

    `writing` is a request: read-only properties are left out; otherwise write-only ones are."""
    if "example" in schema:
        return schema["example"]
    if schema.get("examples"):
        return schema["examples"][0]
    if "$ref" in schema:
        return example_of(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas, writing=writing, depth=depth)
    for combined in ("allOf", "anyOf", "oneOf"):
        options = [option for option in schema.get(combined, ()) if option.get("type") != "null"]
        if options:
            return example_of(options[0], schemas, writing=writing, depth=depth)
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("default") is not None:
        return schema["default"]
    kind = schema.get("type", "object")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object":
        if depth > 8:
            return {}
        left_out = "readOnly" if writing else "writeOnly"
        return {name: example_of(prop, schemas, writing=writing, depth=depth + 1)
                for name, prop in schema.get("properties", {}).items() if not prop.get(left_out)}
    if kind == "array":
        return [example_of(schema.get("items", {}), schemas, writing=writing, depth=depth + 1)]
    if kind in ("integer", "number"):
        return schema.get("minimum", TYPE_EXAMPLES[kind])
    return FORMAT_EXAMPLES.get(schema.get("format", ""), TYPE_EXAMPLES.get(kind, "text"))


# The NL API Design Rules' Spectral rule problem-invalid-input selects every key under `paths` that contains an
# HTTP method's name, unanchored: an example object with the key postcode4 is taken for an operation and fails.
METHOD_LIKE = re.compile("get|delete|put|post|patch")


def misread_by_the_linter(example: Any) -> bool:
    """Whether an example holds a key the NL ruleset's linter takes for an HTTP method (then it is left out)."""
    if isinstance(example, dict):
        return any(METHOD_LIKE.search(key) or misread_by_the_linter(value) for key, value in example.items())
    if isinstance(example, list):
        return any(misread_by_the_linter(item) for item in example)
    return False


def docstring(schema: Any) -> str | None:
    """A schema's own docstring (not one inherited from a base class), for integrators to read."""
    cls = schema if isinstance(schema, type) else type(schema)
    own = cls.__dict__.get("__doc__")
    return re.sub(r"\s*\n\s*", " ", own.strip()) if own else None


class ExamplesPlugin(BasePlugin):
    """Schema descriptions from docstrings, schema examples from `EXAMPLE`, and an example on every request body,
    response body and parameter that has none of its own (derived by `example_of`)."""

    def init_spec(self, spec: Any) -> None:
        self.spec = spec

    def schema_helper(self, name: str, definition: Any, **kwargs: Any) -> dict[str, Any] | None:
        schema = kwargs.get("schema")
        if schema is None:
            return None
        found: dict[str, Any] = {}
        if description := docstring(schema):
            found["description"] = description
        example = getattr(schema, "EXAMPLE", None)
        if example is not None:
            found["examples"] = [example]
        return found

    def path_helper(self, parameters: list[dict[str, Any]] | None = None, **_: Any) -> None:
        self._parameter_examples(parameters or [])

    def operation_helper(self, operations: dict[str, Any] | None = None, **_: Any) -> None:
        for operation in (operations or {}).values():
            self._parameter_examples(operation.get("parameters", []))
            body = operation.get("requestBody", {})
            for media in body.get("content", {}).values() if isinstance(body, dict) else ():
                self._media_example(media, writing=True)
            for status, response in operation.get("responses", {}).items():
                if str(status)[0] == "2" and isinstance(response, dict):
                    for media in response.get("content", {}).values():
                        self._media_example(media, writing=False)

    def _media_example(self, media: dict[str, Any], *, writing: bool) -> None:
        if "schema" in media and "example" not in media and "examples" not in media:
            example = example_of(media["schema"], self.spec.components.schemas, writing=writing)
            if not misread_by_the_linter(example):
                media["example"] = example

    def _parameter_examples(self, parameters: list[Any]) -> None:
        for parameter in parameters:
            if isinstance(parameter, dict) and "schema" in parameter and "example" not in parameter:
                parameter["example"] = example_of(parameter["schema"], self.spec.components.schemas, writing=True)
