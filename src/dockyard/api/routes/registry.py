"""POST /auth (`docker login` checks credentials against the registry) and
GET /distribution/{name}/json (`docker manifest`-like inspection without a pull)."""

from __future__ import annotations

from typing import Protocol

from dockyard.api.messages import JsonResponse, Request, Response
from dockyard.api.router import Route
from dockyard.engine.distributions import DistributionInfo
from dockyard.model.registryauth import Credentials, credentials_from_doc, decode_registry_auth


class Login(Protocol):
    async def login(self, server: str, creds: Credentials) -> None: ...


class Inspector(Protocol):
    async def inspect(self, name: str, creds: Credentials) -> DistributionInfo: ...


def routes(registries: Login, distributions: Inspector) -> list[Route]:
    async def auth(request: Request) -> Response:
        creds = credentials_from_doc(await request.json(allow_empty=False))
        await registries.login(creds.server_address, creds)
        # No identity token: the registries we speak to use Basic or plain token auth.
        return JsonResponse({"IdentityToken": "", "Status": "Login Succeeded"})

    async def distribution(request: Request) -> Response:
        creds = decode_registry_auth(request.headers.get("x-registry-auth", ""))
        return JsonResponse(_distribution_doc(await distributions.inspect(request.params["name"], creds)))

    return [Route("POST", "/auth", auth), Route("GET", "/distribution/{name*}/json", distribution)]


def _distribution_doc(info: DistributionInfo) -> dict[str, object]:
    """The OCI spellings (ocispec.Descriptor, ocispec.Platform), not the swagger's capitals."""
    d = info.descriptor
    platforms = [
        {"architecture": p.architecture, "os": p.os, **({"variant": p.variant} if p.variant else {})}
        for p in info.platforms
    ]
    return {"Descriptor": {"mediaType": d.media_type, "digest": d.digest, "size": d.size}, "Platforms": platforms or None}
