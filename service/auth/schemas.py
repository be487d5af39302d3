"""Wire shapes of clients and tokens. One schema per direction."""

from __future__ import annotations

import marshmallow as ma

from service.auth.models import Role
from service.pagination import PageArgs
from service.schemas import CamelSchema, StrictSchema, screened


class ClientIn(CamelSchema):
    name = ma.fields.String(required=True, validate=[ma.validate.Length(1, 200), screened],
                            metadata={"description": "Refused when it holds identifying data (a phone number, ...)"})
    role = ma.fields.Enum(Role, by_value=True, required=True)
    institution_id = ma.fields.UUID(metadata={"description": "Required for role institution"})
    municipality_codes = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(1, 6)), load_default=list,
        validate=ma.validate.Length(max=400),
        metadata={"description": "For analysts and auditors: CBS codes such as GM0014, or ['*'] for national"},
    )


class ClientOut(CamelSchema):
    id = ma.fields.UUID(required=True)
    name = ma.fields.String(required=True)
    role = ma.fields.Enum(Role, by_value=True, required=True)
    institution_id = ma.fields.UUID(allow_none=True, required=True)
    municipality_codes = ma.fields.List(ma.fields.String(), required=True)
    active = ma.fields.Boolean(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    secret_rotated_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    deactivated_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class ClientCredentialsOut(CamelSchema):
    """Shown once: the secret is stored only as a slow hash."""

    client_id = ma.fields.UUID(required=True)
    client_secret = ma.fields.String(required=True)
    client = ma.fields.Nested(ClientOut, required=True)


class ClientArgs(PageArgs):
    role = ma.fields.Enum(Role, by_value=True)
    active = ma.fields.Boolean()


class OAuthSchema(StrictSchema):
    """RFC 6749 and RFC 7009 name their fields in snake_case; those names are kept."""

    class Meta:
        # RFC 6749 §3.2: a token endpoint ignores parameters it does not know.
        unknown = ma.EXCLUDE


class TokenRequest(OAuthSchema):
    # Documented as the one value; any other is answered with RFC 6749's unsupported_grant_type.
    grant_type = ma.fields.String(required=True, metadata={"enum": ["client_credentials"]})
    client_id = ma.fields.String(metadata={"description": "When not sent by HTTP Basic"})
    client_secret = ma.fields.String(metadata={"description": "When not sent by HTTP Basic"})
    scope = ma.fields.String(metadata={"description": "Ignored: a client's scope is fixed at registration"})


class TokenOut(OAuthSchema):
    access_token = ma.fields.String(required=True)
    token_type = ma.fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = ma.fields.Integer(required=True, metadata={"description": "Seconds"})


class RevocationRequest(OAuthSchema):
    token = ma.fields.String(required=True, metadata={"description": "The access token to revoke"})
    token_type_hint = ma.fields.String()
    client_id = ma.fields.String()
    client_secret = ma.fields.String()


class JwksOut(ma.Schema):
    keys = ma.fields.List(ma.fields.Dict(), required=True)
