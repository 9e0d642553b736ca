"""API shapes of signing in: credentials, tokens, password changes."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from app.core.schemas import InputModel, OutputModel

# Passwords are taken exactly as typed (the model-wide whitespace stripping would silently change the
# secret, and the CLI does not strip); app.core.security normalises them (NFKC) in one place.
Password = Annotated[str, StringConstraints(strip_whitespace=False, min_length=1, max_length=256)]


class LoginIn(InputModel):
    username: str = Field(min_length=1, max_length=64)
    password: Password


class RefreshIn(InputModel):
    refresh_token: str = Field(min_length=1, max_length=256)


class TokenOut(OutputModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
    refresh_token: str
    must_change_password: bool


class PasswordChangeIn(InputModel):
    old_password: Password
    new_password: Password
