"""moby's swagger as shapes to hold documents against, at the API version the CLI speaks.

Debian ships moby's `api/swagger.yaml` in golang-github-docker-docker-dev; bookworm's is
20.10.24, **API 1.41**. The docker CLI 28 speaks **API 1.50** (moby v28.2.2), so `CHANGES`
carries the container inspect and list shapes from 1.41 to 1.50, each change with the API
version that made it (moby's api/docs/CHANGELOG.md) or the swagger fix behind it. Applied
to Debian's file they give exactly the shapes of moby v28.2.2's own api/swagger.yaml (checked
field for field, types and x-nullable included, when this was written).

The swagger says which fields exist; how dockerd marshals them (Go's `omitempty`, nil slices
as null, pointers) is in `Rules`, taken from moby v28.2.2's api/types.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEBIAN_SWAGGER = Path("/usr/share/gocode/src/github.com/docker/docker/api/swagger.yaml")
# dev/setup takes the file out of the package without installing it (its dependencies
# would bring a Go toolchain and systemd-sysv).
SETUP_SWAGGER = Path(sys.prefix) / "share" / "moby" / "swagger.yaml"


def swagger_path() -> Path:
    for path in (DEBIAN_SWAGGER, SETUP_SWAGGER):
        if path.is_file():
            return path
    raise FileNotFoundError(f"moby's swagger.yaml is at neither {DEBIAN_SWAGGER} nor {SETUP_SWAGGER}: run dev/setup test")


@dataclass
class Shape:
    """One node of a schema: an object has `props`, an array `items`, a map `values`."""

    type: str  # string integer number boolean array object, or "" for anything
    nullable: bool = False
    props: dict[str, Shape] | None = None
    items: Shape | None = None
    values: Shape | None = None

    def describe(self, path: str = "") -> dict[str, str]:
        """Every path under this node with its type: what two versions are compared by."""
        out = {path: self.type + (" nullable" if self.nullable else "")}
        for key, child in (self.props or {}).items():
            out.update(child.describe(f"{path}.{key}"))
        if self.items is not None:
            out.update(self.items.describe(f"{path}[]"))
        if self.values is not None:
            out.update(self.values.describe(f"{path}{{}}"))
        return out


def shape_of(schema: Mapping[str, Any], definitions: Mapping[str, Any], depth: int = 0) -> Shape:
    """A swagger schema ($ref, allOf, properties, items, additionalProperties) as a Shape."""
    if depth > 20:
        raise ValueError("swagger schema nests too deep (a reference cycle?)")
    nullable = bool(schema.get("x-nullable"))
    if "$ref" in schema:
        target = shape_of(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions, depth + 1)
        target.nullable = target.nullable or nullable
        return target
    if "allOf" in schema:
        merged = Shape("object", nullable, props={})
        for part in schema["allOf"]:
            piece = shape_of(part, definitions, depth + 1)
            merged.props.update(piece.props or {})  # type: ignore[union-attr]
            merged.nullable = merged.nullable or piece.nullable
        return merged
    kind = schema.get("type") or ("object" if "properties" in schema or "additionalProperties" in schema else "")
    shape = Shape(kind, nullable)
    if "properties" in schema:
        shape.props = {k: shape_of(v, definitions, depth + 1) for k, v in schema["properties"].items()}
    if kind == "array" and "items" in schema:
        shape.items = shape_of(schema["items"], definitions, depth + 1)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        shape.values = shape_of(extra, definitions, depth + 1)
    return shape


# ---- 1.41 -> 1.50 -----------------------------------------------------------------------

_S: dict[str, Any] = {"type": "string"}
_PLATFORM = {"type": "object", "x-nullable": True, "properties": {
    "architecture": _S, "os": _S, "os.version": _S, "os.features": {"type": "array", "items": _S}, "variant": _S,
}}  # fmt: skip
_DESCRIPTOR = {"type": "object", "properties": {
    "mediaType": _S, "digest": _S, "size": {"type": "integer"},
    "urls": {"type": "array", "items": _S, "x-nullable": True},
    "annotations": {"type": "object", "additionalProperties": _S, "x-nullable": True},
    "data": {"type": "string", "x-nullable": True}, "platform": _PLATFORM,
    "artifactType": {"type": "string", "x-nullable": True},
}}  # fmt: skip
_STRINGS = {"type": "array", "items": _S}
_STRING_MAP = {"type": "object", "additionalProperties": _S}


@dataclass(frozen=True)
class Change:
    since: str  # the API version, or "doc" for a swagger fix of what dockerd always sent
    path: str  # Inspect.X.Y / Summary.X; [] steps into an array, {} into a map's values
    op: str  # add | drop | nullable | replace
    schema: Mapping[str, Any] | None = None
    why: str = ""


CHANGES: tuple[Change, ...] = (
    # ---- GET /containers/{id}/json
    Change("doc", "Inspect.Created", "nullable"),
    Change("doc", "Inspect.LogPath", "nullable"),
    Change("1.48", "Inspect.ImageManifestDescriptor", "add", _DESCRIPTOR, "only with a multi-platform image store"),
    Change("1.42", "Inspect.HostConfig.KernelMemory", "drop", why="removed from create and inspect"),
    Change("1.42", "Inspect.HostConfig.Mounts[].BindOptions.CreateMountpoint", "add", {"type": "boolean"}),
    Change("1.44", "Inspect.HostConfig.Mounts[].BindOptions.ReadOnlyNonRecursive", "add", {"type": "boolean"}),
    Change("1.44", "Inspect.HostConfig.Mounts[].BindOptions.ReadOnlyForceRecursive", "add", {"type": "boolean"}),
    Change("1.45", "Inspect.HostConfig.Mounts[].VolumeOptions.Subpath", "add", _S),
    Change("1.48", "Inspect.HostConfig.Mounts[].ImageOptions", "add", {"type": "object", "properties": {"Subpath": _S}}),
    Change("1.46", "Inspect.HostConfig.Mounts[].TmpfsOptions.Options", "add",
           {"type": "array", "items": {"type": "array", "items": _S}}),
    Change("doc", "Inspect.HostConfig.ConsoleSize", "nullable"),
    Change("1.43", "Inspect.HostConfig.Annotations", "add", _STRING_MAP),
    Change("doc", "Inspect.HostConfig.Sysctls", "nullable"),
    Change("doc", "Inspect.HostConfig.Runtime", "nullable"),
    Change("doc", "Inspect.SizeRw", "nullable"),
    Change("doc", "Inspect.SizeRootFs", "nullable"),
    Change("doc", "Inspect.Config.ExposedPorts", "nullable"),
    Change("1.44", "Inspect.Config.Healthcheck.StartInterval", "add", {"type": "integer"}),
    *(Change("doc", f"Inspect.Config.{name}", "nullable")
      for name in ("ArgsEscaped", "NetworkDisabled", "MacAddress", "OnBuild", "StopSignal", "StopTimeout", "Shell")),
    Change("1.48", "Inspect.NetworkSettings.Networks{}.GwPriority", "add", {"type": "number"}),
    Change("1.44", "Inspect.NetworkSettings.Networks{}.DNSNames", "add", _STRINGS),
    # ---- GET /containers/json (1.41 defines ContainerSummary as the array; its items here)
    Change("1.48", "Summary.ImageManifestDescriptor", "add", {**_DESCRIPTOR, "x-nullable": True}),
    Change("doc", "Summary.SizeRw", "nullable"),
    Change("doc", "Summary.SizeRootFs", "nullable"),
    Change("1.46", "Summary.HostConfig.Annotations", "add", {**_STRING_MAP, "x-nullable": True}),
    Change("1.48", "Summary.NetworkSettings.Networks{}.GwPriority", "add", {"type": "number"}),
    Change("1.44", "Summary.NetworkSettings.Networks{}.DNSNames", "add", _STRINGS),
    Change("doc", "Summary.Mounts[]", "replace", {"$ref": "#/definitions/MountPoint"},
           "1.41's swagger listed the create body's Mount; dockerd always sent a MountPoint"),
)


def _step(shape: Shape, token: str) -> Shape:
    name, suffix = token.rstrip("[]{}"), token[len(token.rstrip("[]{}")):]
    node = shape
    if name:
        assert node.props is not None and name in node.props, f"no field {name}"
        node = node.props[name]
    for mark in (suffix[i:i + 2] for i in range(0, len(suffix), 2)):
        nxt = node.items if mark == "[]" else node.values
        assert nxt is not None, f"{token}: not an {'array' if mark == '[]' else 'map'}"
        node = nxt
    return node


def _tokens(path: str) -> list[str]:
    return path.split(".")[1:]  # the first is the root's name


def apply(roots: Mapping[str, Shape], changes: Iterable[Change], definitions: Mapping[str, Any]) -> None:
    """Carry the shapes forward, in place. A change whose target is missing (or already
    there, for an add) fails loudly: the base file is not the one this was written for."""
    for change in changes:
        tokens = _tokens(change.path)
        root = roots[change.path.split(".")[0]]
        if change.op == "nullable":
            node = root
            for token in tokens:
                node = _step(node, token)
            node.nullable = True
            continue
        parent = root
        for token in tokens[:-1]:
            parent = _step(parent, token)
        last = tokens[-1]
        if change.op == "replace" and last.endswith("[]"):
            holder = _step(parent, last[:-2])
            holder.items = shape_of(change.schema or {}, definitions)
            continue
        assert parent.props is not None, change.path
        if change.op == "add":
            assert last not in parent.props, f"{change.path} is already in the base swagger"
            parent.props[last] = shape_of(change.schema or {}, definitions)
        elif change.op == "drop":
            assert last in parent.props, f"{change.path} is not in the base swagger"
            del parent.props[last]
        elif change.op == "replace":
            parent.props[last] = shape_of(change.schema or {}, definitions)
        else:
            raise ValueError(f"unknown change {change.op}")


def load_shapes(path: Path) -> dict[str, Shape]:
    """{"Inspect": ..., "Summary": ...} at API 1.50, from a 1.41 or a 1.50 swagger."""
    import yaml

    doc = yaml.safe_load(path.read_text())
    definitions = doc["definitions"]
    version = str(doc["info"]["version"])
    if "ContainerInspectResponse" in definitions:  # 1.45 on name the inspect response
        inspect = shape_of(definitions["ContainerInspectResponse"], definitions)
    else:
        inspect = shape_of(doc["paths"]["/containers/{id}/json"]["get"]["responses"][200]["schema"], definitions)
    summary = shape_of(definitions["ContainerSummary"], definitions)
    if summary.type == "array" and summary.items is not None:
        summary = summary.items
    roots = {"Inspect": inspect, "Summary": summary}
    if version == "1.41":
        apply(roots, CHANGES, definitions)
    elif version != "1.50":
        raise ValueError(f"{path} is API {version}: CHANGES carries 1.41 to 1.50 only")
    return roots


# ---- how dockerd 28 marshals these (moby v28.2.2 api/types) --------------------------------


@dataclass(frozen=True)
class Rules:
    # `omitempty`: absent when Go's zero value ("", 0, false, nil, empty slice or map).
    omitempty: frozenset[str]
    # `omitempty` on a pointer: absent when nil, and then any value, a zero too, is shown.
    omitempty_pointer: frozenset[str]
    # Go pointers to scalars that dockerd can send as null though the swagger has no x-nullable.
    null_scalars: frozenset[str]
    # Slices and maps dockerd always makes, so never null (every other one may be: a nil slice).
    never_null: frozenset[str]
    # Paths that must be there for this document (beyond the required ones): e.g. sizes with size=1.
    expect: frozenset[str] = field(default_factory=frozenset)


_MOUNT = "Inspect.HostConfig.Mounts[]"
_EP = "NetworkSettings.Networks{}"
_DESC = ("mediaType", "digest", "size")

RULES = Rules(
    omitempty=frozenset({
        # HostConfig (container/hostconfig.go) and its Resources
        *(f"Inspect.HostConfig.{k}" for k in ("Annotations", "StorageOpt", "Tmpfs", "Sysctls", "Runtime",
                                              "KernelMemoryTCP", "Mounts")),
        # mount.Mount and its options: every field
        *(f"{_MOUNT}.{k}" for k in ("Type", "Source", "Target", "ReadOnly", "Consistency")),
        *(f"{_MOUNT}.BindOptions.{k}" for k in ("Propagation", "NonRecursive", "CreateMountpoint",
                                                "ReadOnlyNonRecursive", "ReadOnlyForceRecursive")),
        *(f"{_MOUNT}.VolumeOptions.{k}" for k in ("NoCopy", "Labels", "Subpath")),
        *(f"{_MOUNT}.VolumeOptions.DriverConfig.{k}" for k in ("Name", "Options")),
        f"{_MOUNT}.ImageOptions.Subpath",
        *(f"{_MOUNT}.TmpfsOptions.{k}" for k in ("SizeBytes", "Mode", "Options")),
        # container.Config, and the image spec's HealthcheckConfig
        *(f"Inspect.Config.{k}" for k in ("ExposedPorts", "ArgsEscaped", "NetworkDisabled", "MacAddress",
                                          "StopSignal", "Shell")),
        *(f"Inspect.Config.Healthcheck.{k}" for k in ("Test", "Interval", "Timeout", "StartPeriod",
                                                      "StartInterval", "Retries")),
        # MountPoint
        *(f"{root}.Mounts[].{k}" for root in ("Inspect", "Summary") for k in ("Type", "Name", "Driver")),
        # Summary, and its Port
        "Summary.SizeRw", "Summary.SizeRootFs", "Summary.HostConfig.NetworkMode", "Summary.HostConfig.Annotations",
        "Summary.Ports[].IP", "Summary.Ports[].PublicPort",
        # EndpointIPAMConfig
        *(f"{root}.{_EP}.IPAMConfig.{k}" for root in ("Inspect", "Summary")
          for k in ("IPv4Address", "IPv6Address", "LinkLocalIPs")),
        # ocispec.Descriptor and Platform
        *(f"{root}.ImageManifestDescriptor.{k}" for root in ("Inspect", "Summary")
          for k in ("urls", "annotations", "data", "artifactType")),
        *(f"{root}.ImageManifestDescriptor.platform.{k}" for root in ("Inspect", "Summary")
          for k in ("os.version", "os.features", "variant")),
    }),
    omitempty_pointer=frozenset({
        "Inspect.SizeRw", "Inspect.SizeRootFs", "Inspect.State.Health", "Inspect.HostConfig.Init",
        "Inspect.Config.Healthcheck", "Inspect.Config.StopTimeout",
        f"{_MOUNT}.BindOptions", f"{_MOUNT}.VolumeOptions", f"{_MOUNT}.ImageOptions", f"{_MOUNT}.TmpfsOptions",
        f"{_MOUNT}.VolumeOptions.DriverConfig",
        "Inspect.ImageManifestDescriptor", "Summary.ImageManifestDescriptor",
        "Inspect.ImageManifestDescriptor.platform", "Summary.ImageManifestDescriptor.platform",
    }),
    null_scalars=frozenset({
        "Inspect.HostConfig.MemorySwappiness", "Inspect.HostConfig.OomKillDisable",  # *int64, *bool
    }),
    never_null=frozenset({
        "Inspect.Args", "Inspect.Mounts", "Inspect.NetworkSettings.Ports", "Inspect.NetworkSettings.Networks",
        "Inspect.State.Health.Log", "Summary.Names", "Summary.Ports", "Summary.Mounts",
        "Summary.NetworkSettings.Networks",
    }),
)


def _is_zero(value: Any) -> bool:
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "array": (list,),
    "object": (dict,),
}  # fmt: skip


def check(value: Any, shape: Shape, rules: Rules, path: str, problems: list[str]) -> None:
    """Hold one document against its shape: no key the shape lacks, every key that dockerd
    always sends, the right JSON types, null only where dockerd can send null."""
    if value is None:
        may_be_null = (
            shape.nullable
            or path in rules.null_scalars
            or (shape.type in ("array", "object") and path not in rules.never_null and shape.props is None)
        )
        if not may_be_null:
            problems.append(f"{path}: null, but dockerd sends {shape.type or 'a value'} here")
        return
    if shape.type:
        wanted = _PY_TYPES[shape.type]
        if isinstance(value, bool) and bool not in wanted or not isinstance(value, wanted):
            problems.append(f"{path}: {type(value).__name__} {value!r:.60}, the swagger says {shape.type}")
            return
    if shape.props is not None and isinstance(value, dict):
        for key in value.keys() - shape.props.keys():
            problems.append(f"{path}.{key}: not in the API 1.50 swagger")
        for key, child in shape.props.items():
            sub = f"{path}.{key}"
            optional = sub in rules.omitempty or sub in rules.omitempty_pointer
            if key not in value:
                if not optional or sub in rules.expect:
                    problems.append(f"{sub}: missing (dockerd always sends it)" if not optional else f"{sub}: missing")
                continue
            if sub in rules.omitempty and _is_zero(value[key]):
                problems.append(f"{sub}: {value[key]!r} sent, but dockerd leaves it out when empty (omitempty)")
            check(value[key], child, rules, sub, problems)
    if shape.items is not None and isinstance(value, list):
        for item in value:
            check(item, shape.items, rules, f"{path}[]", problems)
    if shape.values is not None and isinstance(value, dict):
        for item in value.values():
            check(item, shape.values, rules, f"{path}{{}}", problems)
