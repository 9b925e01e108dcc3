"""Networks on the wire: the create request read as dockerd reads it, inspect and list docs."""

from __future__ import annotations

from typing import Any

from dockyard.api.schemas import fields as f
from dockyard.api.versioning import at_least
from dockyard.engine.networks import CreateRequest
from dockyard.errors import InvalidArgument
from dockyard.model.endpoints import Endpoint, EndpointRequest
from dockyard.model.ipam import SubnetPlan, SubnetRequest
from dockyard.model.networks import Network


def create_request(doc: Any) -> CreateRequest:
    body = f.obj(doc, "network config")
    ipam = f.obj(body.get("IPAM"), "IPAM")
    subnets = []
    for i, entry in enumerate(ipam.get("Config") or ()):
        item = f.obj(entry, f"IPAM.Config[{i}]")
        subnets.append(SubnetRequest(
            subnet=f.string(item.get("Subnet"), "Subnet"),
            ip_range=f.string(item.get("IPRange"), "IPRange"),
            gateway=f.string(item.get("Gateway"), "Gateway"),
            aux_addresses=f.str_map(item.get("AuxiliaryAddresses"), "AuxiliaryAddresses"),
        ))  # fmt: skip
    if ipam.get("Config") is not None and not isinstance(ipam.get("Config"), list):
        raise f.type_error("IPAM.Config", ipam.get("Config"), "[]network.IPAMConfig")
    config_from = f.obj(body.get("ConfigFrom"), "ConfigFrom")
    return CreateRequest(
        name=f.string(body.get("Name"), "Name"),
        driver=f.string(body.get("Driver"), "Driver") or "bridge",
        internal=f.boolean(body.get("Internal"), "Internal"),
        attachable=f.boolean(body.get("Attachable"), "Attachable"),
        ingress=f.boolean(body.get("Ingress"), "Ingress"),
        enable_ipv4=f.opt_boolean(body.get("EnableIPv4"), "EnableIPv4"),
        enable_ipv6=f.opt_boolean(body.get("EnableIPv6"), "EnableIPv6"),
        labels=f.str_map(body.get("Labels"), "Labels"),
        options=f.str_map(body.get("Options"), "Options"),
        ipam_driver=f.string(ipam.get("Driver"), "IPAM.Driver") or "default",
        ipam_options=None if ipam.get("Options") is None else f.str_map(ipam.get("Options"), "IPAM.Options"),
        subnets=tuple(subnets),
        config_only=f.boolean(body.get("ConfigOnly"), "ConfigOnly"),
        config_from=f.string(config_from.get("Network"), "ConfigFrom.Network"),
    )


def _ipam_config(plan: SubnetPlan) -> dict[str, Any]:
    doc: dict[str, Any] = {"Subnet": str(plan.subnet)}
    if plan.ip_range is not None:
        doc["IPRange"] = str(plan.ip_range)
    if plan.gateway is not None:
        doc["Gateway"] = str(plan.gateway)
    if plan.aux_addresses:
        doc["AuxiliaryAddresses"] = {name: str(addr) for name, addr in plan.aux_addresses}
    return doc


def network_doc(n: Network, api_version: str, containers: dict[str, Any] | None = None) -> dict[str, Any]:
    """network.Inspect (and network.Summary, whose Containers is empty)."""
    spec = n.spec
    user_made = not n.predefined
    doc: dict[str, Any] = {
        "Name": spec.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": str(spec.driver),
    }
    if at_least(api_version, "1.48"):
        doc["EnableIPv4"] = spec.enable_ipv4
    doc.update({
        "EnableIPv6": spec.enable_ipv6,
        "IPAM": {
            "Driver": spec.ipam_driver,
            "Options": dict(spec.ipam_options) if user_made and spec.ipam_options is not None else None,
            "Config": [_ipam_config(s) for s in spec.subnets],
        },
        "Internal": spec.internal,
        "Attachable": spec.attachable,
        "Ingress": spec.ingress,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers or {},
        "Options": dict(spec.options),
        "Labels": dict(spec.labels),
    })  # fmt: skip
    return doc


def members_doc(members: dict[str, tuple[str, Endpoint]]) -> dict[str, Any]:
    """Containers of a network inspect: id -> network.EndpointResource."""
    return {
        cid: {
            "Name": name,
            "EndpointID": e.endpoint_id,
            "MacAddress": e.mac,
            "IPv4Address": str(e.ipv4) if e.ipv4 else "",
            "IPv6Address": str(e.ipv6) if e.ipv6 else "",
        }
        for cid, (name, e) in sorted(members.items())
    }


def connect_request(doc: Any) -> tuple[str, EndpointRequest]:
    """`POST /networks/{id}/connect`: the container and its EndpointConfig."""
    body = f.obj(doc, "network connect")
    container = f.string(body.get("Container"), "Container")
    if not container:
        raise InvalidArgument("no container specified")
    item = f.obj(body.get("EndpointConfig"), "EndpointConfig")
    ipam = f.obj(item.get("IPAMConfig"), "IPAMConfig")
    return container, EndpointRequest(
        network_id="",
        network_name="",
        aliases=f.strs(item.get("Aliases"), "Aliases"),
        links=f.strs(item.get("Links"), "Links"),
        ipv4=f.string(ipam.get("IPv4Address"), "IPv4Address"),
        ipv6=f.string(ipam.get("IPv6Address"), "IPv6Address"),
        link_local=f.strs(ipam.get("LinkLocalIPs"), "LinkLocalIPs"),
        mac=f.string(item.get("MacAddress"), "MacAddress"),
        driver_opts=f.str_map(item.get("DriverOpts"), "DriverOpts"),
        gw_priority=f.integer(item.get("GwPriority"), "GwPriority", go_type="int"),
    )


def disconnect_request(doc: Any) -> tuple[str, bool]:
    body = f.obj(doc, "network disconnect")
    container = f.string(body.get("Container"), "Container")
    if not container:
        raise InvalidArgument("no container specified")
    return container, f.boolean(body.get("Force"), "Force")
