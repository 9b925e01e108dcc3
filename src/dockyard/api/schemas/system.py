"""System documents: /version and /info in dockerd's shape (API 1.50)."""

from __future__ import annotations

import sys
from datetime import UTC
from typing import Any

from dockyard.api.versioning import API_VERSION, MIN_API_VERSION
from dockyard.engine.system import ENGINE_VERSION, Component, SystemService
from dockyard.model.registries import RegistrySettings

_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def go_arch(machine: str) -> str:
    return _GO_ARCH.get(machine, machine)


def version_doc(system: SystemService, parts: list[Component]) -> dict[str, Any]:
    facts = system.facts
    lang = f"python{sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}"
    details = {
        "ApiVersion": API_VERSION,
        "Arch": go_arch(facts.arch),
        "BuildTime": "",
        "Experimental": "false",
        "GitCommit": "",
        "GoVersion": lang,
        "KernelVersion": facts.kernel,
        "MinAPIVersion": MIN_API_VERSION,
        "Os": "linux",
    }
    components = [{"Name": "Engine", "Version": ENGINE_VERSION, "Details": details}]
    components += [{"Name": p.name, "Version": p.version, "Details": {"Path": p.path}} for p in parts]
    return {
        "Platform": {"Name": "dockyard"},
        "Components": components,
        "Version": ENGINE_VERSION,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": lang,
        "Os": "linux",
        "Arch": go_arch(facts.arch),
        "KernelVersion": facts.kernel,
        "BuildTime": "",
    }


def info_doc(system: SystemService, listeners: int = 0) -> dict[str, Any]:
    facts = system.facts
    counts = system.counts()
    config = system.config
    return {
        "ID": system.daemon_id,
        "Containers": counts.containers,
        "ContainersRunning": counts.running,
        "ContainersPaused": counts.paused,
        "ContainersStopped": counts.stopped,
        "Images": counts.images,
        "Driver": "overlayfs",
        "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge", "host", "none"],
            "Authorization": None,
            "Log": ["json-file"],
        },
        "MemoryLimit": True,
        "SwapLimit": False,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "BridgeNfIptables": False,
        "BridgeNfIp6tables": False,
        "Debug": config.log_level == "debug",
        "NFd": 0,
        "OomKillDisable": True,
        "NGoroutines": 0,
        "SystemTime": _now(),
        # conmon writes the file; clients (docker-py's run) only need to know logs are readable.
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": facts.cgroup_version,
        "NEventsListener": listeners,
        "KernelVersion": facts.kernel,
        "OperatingSystem": facts.os_name,
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": facts.arch,
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": _registry_config(RegistrySettings.build(config.insecure_registries, config.registry_mirrors)),
        "NCPU": facts.ncpu,
        "MemTotal": facts.mem_total,
        "GenericResources": None,
        "DockerRootDir": str(config.data_root),
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": facts.hostname,
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": {name: {"path": r.path} for name, r in config.runtimes.items()},
        "DefaultRuntime": config.default_runtime,
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": list(system.security.options),
        "CDISpecDirs": [],
        "Warnings": list(system.security.warnings) or None,
        "KernelMemoryTCP": False,
        "Containerd": None,
    }


def _now() -> str:
    from datetime import datetime

    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _registry_config(settings: RegistrySettings) -> dict[str, Any]:
    """dockerd's ServiceConfig: insecure CIDRs (the user's, then loopback's), one index per
    insecure name plus docker.io with its mirrors."""
    indexes: dict[str, Any] = {
        name: {"Name": name, "Mirrors": [], "Secure": False, "Official": False} for name in settings.insecure_names
    }
    indexes["docker.io"] = {"Name": "docker.io", "Mirrors": list(settings.mirrors), "Secure": True, "Official": True}
    return {
        "InsecureRegistryCIDRs": [str(c) for c in settings.insecure_cidrs] + ["::1/128", "127.0.0.0/8"],
        "IndexConfigs": indexes,
        "Mirrors": list(settings.mirrors),
    }
