"""/networks routes."""

from __future__ import annotations

from dockyard.api.messages import EmptyResponse, JsonResponse, Request, Response
from dockyard.api.router import Route
from dockyard.api.schemas import networks as schema
from dockyard.engine.connections import Connections
from dockyard.engine.endpoints import Endpoints
from dockyard.engine.networks import NetworkService
from dockyard.errors import InvalidArgument, NotFound
from dockyard.model.filters import parse_filters


def routes(networks: NetworkService, endpoints: Endpoints, connections: Connections) -> list[Route]:
    async def list_networks(request: Request) -> Response:
        found = networks.query(parse_filters(request.arg("filters")))
        return JsonResponse([schema.network_doc(n, request.api_version) for n in found])

    async def inspect(request: Request) -> Response:
        verbose = request.arg("verbose")
        if verbose not in ("", "0", "1", "true", "false", "True", "False", "t", "f"):
            raise InvalidArgument(f"invalid value for verbose: {verbose}")
        scope = request.arg("scope")
        n = networks.get(request.params["id"])
        if scope and scope != "local":
            raise NotFound(f"network {request.params['id']} not found")
        return JsonResponse(schema.network_doc(n, request.api_version, schema.members_doc(endpoints.members(n.id))))

    async def create(request: Request) -> Response:
        network = await networks.create(schema.create_request(await request.json()))
        return JsonResponse({"Id": network.id, "Warning": ""}, status=201)

    async def remove(request: Request) -> Response:
        await networks.remove(request.params["id"])
        return EmptyResponse(204)

    async def prune(request: Request) -> Response:
        removed = await networks.prune(parse_filters(request.arg("filters")))
        return JsonResponse({"NetworksDeleted": removed or None})  # Go's nil slice when none went

    async def connect(request: Request) -> Response:
        container, endpoint = schema.connect_request(await request.json())
        await connections.connect(request.params["id"], container, endpoint)
        return EmptyResponse(200)

    async def disconnect(request: Request) -> Response:
        container, force = schema.disconnect_request(await request.json())
        await connections.disconnect(request.params["id"], container, force=force)
        return EmptyResponse(200)

    async def remove_link(request: Request) -> Response:
        """`docker rm --link parent/alias`: the link goes, both containers stay."""
        parent, alias = request.params["parent"], request.params["alias"]
        if not request.flag("link"):
            raise NotFound(f"No such container: {parent}/{alias}")
        await connections.remove_link(parent, alias)
        return EmptyResponse(204)

    return [
        Route("DELETE", "/containers/{parent}/{alias}", remove_link),
        Route("POST", "/networks/{id}/connect", connect),
        Route("POST", "/networks/{id}/disconnect", disconnect),
        Route("GET", "/networks", list_networks),
        Route("POST", "/networks/create", create),
        Route("POST", "/networks/prune", prune),
        Route("GET", "/networks/{id}", inspect),
        Route("DELETE", "/networks/{id}", remove),
    ]
