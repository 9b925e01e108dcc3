"""POST /auth: `docker login` checks credentials against the registry."""

from __future__ import annotations

from typing import Protocol

from dockyard.api.messages import JsonResponse, Request, Response
from dockyard.api.router import Route
from dockyard.model.registryauth import Credentials, credentials_from_doc


class Login(Protocol):
    async def login(self, server: str, creds: Credentials) -> str: ...


def routes(registries: Login) -> list[Route]:
    async def auth(request: Request) -> Response:
        creds = credentials_from_doc(await request.json(allow_empty=False))
        # A token server's refresh token, if it gave one: the CLI stores it instead of the password.
        identity = await registries.login(creds.server_address, creds)
        return JsonResponse({"IdentityToken": identity, "Status": "Login Succeeded"})

    return [Route("POST", "/auth", auth)]
