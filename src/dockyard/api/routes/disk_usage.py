"""GET /system/df: what images, containers and volumes take on disk."""

from __future__ import annotations

from collections.abc import Callable

from dockyard.api.messages import JsonResponse, Request, Response
from dockyard.api.router import Route
from dockyard.api.schemas import containers as schema
from dockyard.api.schemas import images as image_schema
from dockyard.api.schemas import volumes as volume_schema
from dockyard.engine.containers import ContainerService
from dockyard.engine.images import ImageService
from dockyard.engine.volumes import VolumeService
from dockyard.model.filters import parse_filters


def routes(
    containers: ContainerService, images: ImageService, count_users: Callable[[str], int], volumes: VolumeService
) -> list[Route]:
    async def disk_usage(request: Request) -> Response:
        image_docs = []
        for entry in images.query(parse_filters(""), include_all=False):  # top images, as dockerd
            doc = image_schema.summary_doc(entry, count_users(entry.id))
            doc["SharedSize"] = images.shared_size(entry)
            image_docs.append(doc)
        container_docs = []
        for c in containers.query(parse_filters(""), include_all=True):
            sizes = await containers.sizes(c)
            doc = schema.summary_doc(c, size_rw=sizes.rw, size_root_fs=sizes.root_fs)
            container_docs.append(doc)
        volume_docs = [
            volume_schema.volume_doc(v, volumes.mountpoint(v), await volumes.size(v), volumes.ref_count(v.name))
            for v in volumes.all()
        ]
        return JsonResponse(
            {
                "LayersSize": images.layers_size(),
                "Images": image_docs,
                "Containers": container_docs,
                "Volumes": volume_docs,
                "BuildCache": [],
            }
        )

    return [Route("GET", "/system/df", disk_usage)]
