"""Machine clients for the sharing tests: made through the admin API, and their tokens through the token
endpoint."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from tests.assertions import ok
from tests.conftest import Api

V1 = "/api/v1"
TOKEN_URL = V1 + "/partner/oauth/token"


@dataclass
class Client:
    user_id: str
    client_id: str
    secret: str
    version: int

    def basic(self) -> dict[str, str]:
        raw = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        return {"Authorization": "Basic " + raw}


def make_client(api: Api, kind: str, client_id: str, *, division_ids: list[str] | None = None,
                hukou_prefix: str | None = None) -> Client:
    """A client of `kind` with its jurisdiction and one secret."""
    made = ok(api.as_("admin", "POST", V1 + "/sharing/clients",
                      json={"client_id": client_id, "display_name": client_id, "kind": kind}), 201)
    version = made["version"]
    if division_ids is not None or hukou_prefix is not None:
        body: dict[str, Any] = {"version": version}
        if division_ids is not None:
            body["division_ids"] = division_ids
        if hukou_prefix is not None:
            body["hukou_prefix"] = hukou_prefix
        version = ok(api.as_("admin", "PUT", f"{V1}/sharing/clients/{made['user_id']}/jurisdiction",
                             json=body))["version"]
    secret = ok(api.as_("admin", "POST", f"{V1}/sharing/clients/{made['user_id']}/secrets"), 201)
    return Client(made["user_id"], client_id, secret["client_secret"], version)


def request_token(api: Api, client: Client, **form: str) -> Any:
    data = {"grant_type": "client_credentials", "client_id": client.client_id, "client_secret": client.secret,
            **form}
    return api.client.post(TOKEN_URL, data=data)


def bearer(api: Api, client: Client, **form: str) -> dict[str, str]:
    token = ok(request_token(api, client, **form))["access_token"]
    return {"Authorization": "Bearer " + token}
