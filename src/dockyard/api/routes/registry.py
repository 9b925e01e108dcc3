"""POST /auth: `docker login` checks credentials against the registry."""

from __future__ import annotations

from typing import Protocol

from dockyard.api.messages import JsonResponse, Request, Response
from dockyard.api.router import Route
from dockyard.model.registryauth import Credentials, credentials_from_doc


class Login(Protocol):
    async def login(self, server: str, creds: Credentials) -> None: ...


def routes(registries: Login) -> list[Route]:
    async def auth(request: Request) -> Response:
        creds = credentials_from_doc(await request.json(allow_empty=False))
        await registries.login(creds.server_address, creds)
        # No identity token: the registries we speak to use Basic or plain token auth.
        return JsonResponse({"IdentityToken": "", "Status": "Login Succeeded"})

    return [Route("POST", "/auth", auth)]
