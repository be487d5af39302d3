"""Wire shapes of clients and tokens. One schema per direction."""

from __future__ import annotations

import marshmallow as ma

from service.auth.models import Role
from service.openapi import Codes
from service.pagination import PageArgs
from service.schemas import CamelSchema, StrictSchema, screened

TOKEN_EXAMPLE = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl"
GRANT_TYPE = Codes("GrantType", ("client_credentials",), "The OAuth 2.0 grant: client credentials only.")


class ClientIn(CamelSchema):
    """A new API client: one per system that calls the register. Its role and scope are fixed for its life."""

    EXAMPLE = {"name": "Het Anker client software", "role": "institution",
               "institutionId": "5f0c8a4e-2b1d-4c3e-9f6a-7d8e9a0b1c2d"}

    name = ma.fields.String(required=True, validate=[ma.validate.Length(1, 200), screened],
                            metadata={"description": "A name to recognise the client by; refused when it holds "
                                                     "identifying data (a phone number, ...)",
                                      "example": "Het Anker client software"})
    role = ma.fields.Enum(Role, by_value=True, required=True)
    institution_id = ma.fields.UUID(metadata={"description": "Required for role institution"})
    municipality_codes = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(1, 6)), load_default=list,
        validate=ma.validate.Length(max=400),
        metadata={"description": "For analysts and auditors: CBS codes such as GM0014, or ['*'] for national"},
    )


class ClientOut(CamelSchema):
    """An API client, without its secret."""

    id = ma.fields.UUID(required=True, metadata={"description": "The client id, used as client_id for tokens"})
    name = ma.fields.String(required=True, metadata={"description": "The name given at registration",
                                                     "example": "Het Anker client software"})
    role = ma.fields.Enum(Role, by_value=True, required=True)
    institution_id = ma.fields.UUID(allow_none=True, required=True,
                                    metadata={"description": "The institution of an institution client; else null"})
    municipality_codes = ma.fields.List(ma.fields.String(metadata={"example": "GM0014"}), required=True, metadata={
        "description": "The scope of an analyst or auditor: CBS codes, or ['*'] for national; else empty"})
    active = ma.fields.Boolean(required=True, metadata={"description": "False once deactivated: tokens are refused"})
    created_at = ma.fields.AwareDateTime(required=True, metadata={"description": "When it was registered"})
    secret_rotated_at = ma.fields.AwareDateTime(allow_none=True, required=True,
                                                metadata={"description": "When the secret was last replaced"})
    deactivated_at = ma.fields.AwareDateTime(allow_none=True, required=True,
                                             metadata={"description": "When it was deactivated; null while active"})


class ClientCredentialsOut(CamelSchema):
    """A client id with its secret. Shown once: the secret is stored only as a slow hash."""

    client_id = ma.fields.UUID(required=True, metadata={"description": "The client id (client_id for tokens)"})
    client_secret = ma.fields.String(required=True, metadata={
        "description": "The secret (client_secret for tokens). Store it now: it cannot be shown again",
        "example": "s3cr3t-5b2e9f0c7a1d4e6b8c3f2a1d0e9b8c7a"})
    client = ma.fields.Nested(ClientOut, required=True, metadata={"description": "The client"})


class ClientArgs(PageArgs):
    role = ma.fields.Enum(Role, by_value=True, metadata={"description": "Only clients of this role"})
    active = ma.fields.Boolean(metadata={"description": "Only active (true) or deactivated (false) clients"})


class OAuthSchema(StrictSchema):
    """RFC 6749 and RFC 7009 name their fields in snake_case; those names are kept."""

    class Meta:
        # RFC 6749 §3.2: a token endpoint ignores parameters it does not know.
        unknown = ma.EXCLUDE


class TokenRequest(OAuthSchema):
    """A client-credentials token request (RFC 6749 section 4.4), form-encoded. Send the client id and secret by
    HTTP Basic or as the form fields client_id and client_secret."""

    # Documented as the one value; any other is answered with RFC 6749's unsupported_grant_type.
    grant_type = ma.fields.String(required=True, metadata={"codes": GRANT_TYPE})
    client_id = ma.fields.String(metadata={"description": "When not sent by HTTP Basic",
                                           "example": "5f0c8a4e-2b1d-4c3e-9f6a-7d8e9a0b1c2d"})
    client_secret = ma.fields.String(metadata={"description": "When not sent by HTTP Basic",
                                               "example": "s3cr3t-5b2e9f0c7a1d4e6b8c3f2a1d0e9b8c7a"})
    scope = ma.fields.String(metadata={"description": "Ignored: a client's scope is fixed at registration"})


class TokenOut(OAuthSchema):
    """An access token: send it as `Authorization: Bearer <access_token>` until it expires."""

    access_token = ma.fields.String(required=True, metadata={
        "description": "A signed JWT", "example": TOKEN_EXAMPLE})
    token_type = ma.fields.String(required=True, metadata={"description": "Always Bearer", "example": "Bearer"})
    expires_in = ma.fields.Integer(required=True, metadata={"description": "Seconds until it expires",
                                                            "example": 900})


class RevocationRequest(OAuthSchema):
    """A token revocation (RFC 7009), form-encoded, authenticated like a token request."""

    token = ma.fields.String(required=True, metadata={
        "description": "The access token to revoke",
        "example": TOKEN_EXAMPLE})
    token_type_hint = ma.fields.String(metadata={"description": "Ignored: only access tokens are issued",
                                                 "example": "access_token"})
    client_id = ma.fields.String(metadata={"description": "When not sent by HTTP Basic",
                                           "example": "5f0c8a4e-2b1d-4c3e-9f6a-7d8e9a0b1c2d"})
    client_secret = ma.fields.String(metadata={"description": "When not sent by HTTP Basic",
                                               "example": "s3cr3t-5b2e9f0c7a1d4e6b8c3f2a1d0e9b8c7a"})


class JwksOut(ma.Schema):
    """The public keys that verify access tokens (RFC 7517), when tokens are signed asymmetrically."""

    keys = ma.fields.List(ma.fields.Dict(), required=True, metadata={
        "description": "JSON Web Keys; empty when tokens are signed with a shared secret"})
