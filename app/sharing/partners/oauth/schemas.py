"""API shapes of the token endpoint (RFC 6749 §4.4 and §5): a token, or an error in the RFC's own shape."""

from __future__ import annotations

from pydantic import Field

from app.core.schemas import OutputModel


class ClientTokenOut(OutputModel):
    access_token: str
    token_type: str = Field(default="Bearer", description="Always `Bearer`")
    expires_in: int = Field(description="Seconds (PARTNER_TOKEN_MINUTES)")
    scope: str = Field(description="The granted scopes, space-separated")


class OAuthErrorOut(OutputModel):
    error: str = Field(description="invalid_request, invalid_client, unsupported_grant_type, invalid_scope or "
                                   "temporarily_unavailable")
    error_description: str
