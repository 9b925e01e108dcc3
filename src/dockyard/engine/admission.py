"""Create-time admission on this host: the engine's one call before it reserves a name, so
a container this host cannot run is refused with a 400 and nothing is left behind."""

from __future__ import annotations

from dockyard.linux.hostinfo import probe_path, read_host_facts
from dockyard.model.admission import HostFacts, admit, check_platform, create_warnings
from dockyard.model.containers import ContainerSpec


def check_on_host(spec: ContainerSpec, facts: HostFacts | None = None) -> tuple[str, ...]:
    """Blocking (a few small reads and stats): run it in a thread. `spec` after the image's
    defaults are merged. Raises InvalidArgument; returns the create response's warnings."""
    facts = facts if facts is not None else read_host_facts()
    admit(spec, facts, probe_path)
    return create_warnings(spec, facts)


def check_platform_on_host(platform: str, facts: HostFacts | None = None) -> None:
    """The create route's `platform` query: 400 unless it names this host's os/arch."""
    check_platform(platform, facts if facts is not None else read_host_facts())
