"""Daemon configuration: dockerd's flag names, plus a daemon.json file.

As in dockerd, an option may come from a flag or from the file, not both.
"""

from __future__ import annotations

import argparse
import enum
import ipaddress
import json
import logging
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.model.containers import LogConfig
from dockyard.model.ipam import parse_address_pools
from dockyard.model.logs import daemon_log_config
from dockyard.model.networks import NetworkDefaults
from dockyard.model.registries import validate_mirror
from dockyard.model.seccomp import parse_profile

log = logging.getLogger(__name__)

DEFAULT_HOST = "unix:///var/run/docker.sock"


class RuntimeOrigin(enum.StrEnum):
    BUILTIN = "builtin"  # found on the host by name (runc, crun): left out where it cannot work
    CONFIGURED = "configured"  # named in daemon.json's "runtimes": kept as the user wrote it


@dataclass(frozen=True)
class RuntimeOption:
    name: str
    path: str  # the runtime's binary (what `docker info` reports)
    args: tuple[str, ...] = ()  # daemon.json runtimeArgs: global flags given before the command
    origin: RuntimeOrigin = RuntimeOrigin.CONFIGURED
    # What runs the runtime on this host, its argv before `path` (empty: `path` itself).
    # Set at start-up by runtime/catalog.py, e.g. crun on a hybrid cgroup host.
    launcher: tuple[str, ...] = ()


class MonitorChoice(enum.StrEnum):
    """daemon.json `monitor`: the per-container monitor (runtime/monitor.py)."""

    AUTO = "auto"  # dockyard-monitor where it is installed, else conmon
    DOCKYARD = "dockyard-monitor"
    CONMON = "conmon"


@dataclass(frozen=True)
class TlsOptions:
    verify: bool
    ca_cert: Path | None
    cert: Path | None
    key: Path | None


@dataclass(frozen=True)
class DaemonConfig:
    hosts: tuple[str, ...] = (DEFAULT_HOST,)
    data_root: Path = Path("/var/lib/dockyard")
    exec_root: Path = Path("/run/dockyard")
    pidfile: Path = Path("/var/run/dockyard.pid")
    log_level: str = "info"
    # The runtime of containers that name none. Unless the user chose one (requested_runtime),
    # start-up replaces it with the fastest that works on the host (runtime/catalog.py).
    default_runtime: str = "runc"
    requested_runtime: str | None = None  # --default-runtime / daemon.json default-runtime
    runtimes: Mapping[str, RuntimeOption] = field(default_factory=dict)
    tls: TlsOptions | None = None
    log_config: LogConfig = field(default_factory=LogConfig)  # daemon.json log-driver / log-opts: containers' default
    # Containers outlive the daemon by default (dockerd's live-restore, off there: moby#23213);
    # with it off, a daemon that stops stops its containers, each within shutdown_timeout.
    live_restore: bool = True
    shutdown_timeout: int = 15
    seccomp_profile: str = "builtin"  # daemon.json seccomp-profile: "builtin", "unconfined" or a file's path
    seccomp_profile_json: str = ""  # that file's content, read (and checked) when the configuration is loaded
    no_new_privileges: bool = False  # daemon.json no-new-privileges: containers' default
    network: NetworkDefaults = field(default_factory=NetworkDefaults)
    monitor: MonitorChoice = MonitorChoice.AUTO
    # Registries spoken to over plain HTTP (or TLS unverified) besides loopback: hosts or CIDRs.
    insecure_registries: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()  # docker.io's mirrors, validated (each ends in "/")
    # Registries' CA roots and client certificates, <dir>/<host:port>/ as dockerd's certs.d.
    registry_certs_dir: Path = Path("/etc/docker/certs.d")

    def runtime(self, name: str) -> RuntimeOption:
        found = self.runtimes.get(name or self.default_runtime)
        if found is None:
            raise InvalidArgument(f"unknown or invalid runtime name: {name}")
        return found


# daemon.json key -> argparse dest
_FILE_KEYS = {
    "hosts": "hosts",
    "data-root": "data_root",
    "exec-root": "exec_root",
    "pidfile": "pidfile",
    "log-level": "log_level",
    "default-runtime": "default_runtime",
    "log-driver": "log_driver",
    "log-opts": "log_opts",
    "live-restore": "live_restore",
    "shutdown-timeout": "shutdown_timeout",
    "tlsverify": "tlsverify",
    "tlscacert": "tlscacert",
    "tlscert": "tlscert",
    "tlskey": "tlskey",
    "seccomp-profile": "seccomp_profile",
    "no-new-privileges": "no_new_privileges",
    "bridge": "bridge",
    "bip": "bip",
    "fixed-cidr": "fixed_cidr",
    "mtu": "mtu",
    "icc": "icc",
    "ip-masq": "ip_masq",
    "ip": "host_binding_ipv4",
    "iptables": "iptables",
    "firewall-table": "firewall_table",
    "default-address-pools": "default_address_pools",
    "dns": "dns",
    "dns-search": "dns_search",
    "dns-opts": "dns_opts",
    "monitor": "monitor",
    "insecure-registries": "insecure_registries",
    "registry-mirrors": "registry_mirrors",
    "registry-certs-dir": "registry_certs_dir",
}


def add_daemon_flags(parser: argparse.ArgumentParser) -> None:
    # Defaults are None so we can tell a flag given from a flag left alone.
    parser.add_argument("-H", "--host", dest="hosts", action="append", metavar="HOST",
                        help="socket to listen on: unix:///path or tcp://host:port (repeatable)")
    parser.add_argument("--data-root", help="root of persistent state (default /var/lib/dockyard)")
    parser.add_argument("--exec-root", help="root of run-time state (default /run/dockyard)")
    parser.add_argument("-p", "--pidfile", help="pid file (default /var/run/dockyard.pid)")
    parser.add_argument("--config-file", default="/etc/dockyard/daemon.json",
                        help="daemon.json to read (default /etc/dockyard/daemon.json)")
    parser.add_argument("-l", "--log-level", choices=["debug", "info", "warn", "error", "fatal"])
    parser.add_argument("-D", "--debug", action="store_true", default=None, help="same as --log-level debug")
    parser.add_argument("--default-runtime", help="OCI runtime for containers (default: the fastest that works here)")
    parser.add_argument("--live-restore", type=_flag_bool, nargs="?", const=True, metavar="BOOL",
                        help="containers keep running while the daemon is down (default true)")
    parser.add_argument("--shutdown-timeout", type=int, metavar="SECONDS",
                        help="without live-restore: how long containers get to stop (default 15)")
    parser.add_argument("--log-driver", help="default log driver for containers (default json-file)")
    parser.add_argument("--log-opt", dest="log_opts", action="append", metavar="KEY=VALUE",
                        help="default log driver option (repeatable)")
    parser.add_argument("--seccomp-profile", metavar="PATH",
                        help='seccomp profile for containers: a JSON file, or "unconfined" (default: the builtin one)')
    parser.add_argument("--no-new-privileges", type=_flag_bool, nargs="?", const=True, metavar="BOOL",
                        help="set no-new-privileges by default for new containers")
    parser.add_argument("-b", "--bridge", help='the default bridge device (default dockyard0; "none": no default bridge)')
    parser.add_argument("--bip", metavar="CIDR", help="the default bridge's address and prefix, e.g. 10.213.0.1/16")
    parser.add_argument("--fixed-cidr", metavar="CIDR", help="the part of the default bridge's subnet containers get addresses from")
    parser.add_argument("--mtu", type=int, help="the default bridge's MTU")
    parser.add_argument("--icc", type=_flag_bool, nargs="?", const=True, metavar="BOOL",
                        help="containers on the default bridge reach each other (default true)")
    parser.add_argument("--ip-masq", type=_flag_bool, nargs="?", const=True, metavar="BOOL",
                        help="masquerade containers' traffic leaving the host (default true)")
    parser.add_argument("--ip", dest="host_binding_ipv4", metavar="ADDRESS",
                        help="the host address of published ports given without one (default 0.0.0.0)")
    parser.add_argument("--iptables", type=_flag_bool, nargs="?", const=True, metavar="BOOL",
                        help="program the firewall: NAT, isolation, published ports (default true)")
    parser.add_argument("--firewall-table", metavar="NAME", help="the nftables tables of this daemon (default dockyard)")
    parser.add_argument("--default-address-pool", dest="default_address_pools", action="append", metavar="base=CIDR,size=N",
                        help="where new networks' subnets come from (repeatable)")
    parser.add_argument("--dns", action="append", metavar="ADDRESS", help="DNS server for containers (repeatable)")
    parser.add_argument("--dns-search", action="append", metavar="DOMAIN", help="DNS search domain for containers")
    parser.add_argument("--dns-opt", dest="dns_opts", action="append", metavar="OPTION", help="DNS option for containers")
    parser.add_argument("--monitor", choices=[c.value for c in MonitorChoice],
                        help="the per-container monitor (default auto: dockyard-monitor where installed, else conmon)")
    parser.add_argument("--insecure-registry", dest="insecure_registries", action="append", metavar="HOST",
                        help="a registry (host[:port] or CIDR) reached without verified TLS (repeatable)")
    parser.add_argument("--registry-mirror", dest="registry_mirrors", action="append", metavar="URL",
                        help="a mirror of docker.io, tried before it (repeatable)")
    parser.add_argument("--registry-certs-dir", metavar="DIR",
                        help="registries' CA and client certificates, DIR/<host:port>/ (default /etc/docker/certs.d)")
    parser.add_argument("--tlsverify", action="store_true", default=None)
    parser.add_argument("--tlscacert")
    parser.add_argument("--tlscert")
    parser.add_argument("--tlskey")


def _read_file(path: Path, explicit: bool) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        if explicit:
            raise InvalidArgument(f"unable to configure the daemon: open {path}: no such file or directory") from None
        return {}
    try:
        doc = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise InvalidArgument(f"unable to configure the daemon with file {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidArgument(f"unable to configure the daemon with file {path}: not a JSON object")
    return doc


def _default_runtimes() -> dict[str, RuntimeOption]:
    """runc and crun where PATH has them; which of them work here is decided at start-up."""
    found = {}
    for name in ("runc", "crun"):
        path = shutil.which(name) or f"/usr/bin/{name}"
        found[name] = RuntimeOption(name, path, origin=RuntimeOrigin.BUILTIN)
    return found


def load_config(args: argparse.Namespace, *, config_file_given: bool) -> DaemonConfig:
    doc = _read_file(Path(args.config_file), config_file_given)
    both = [key for key, dest in _FILE_KEYS.items() if key in doc and getattr(args, dest, None) is not None]
    if both:
        raise InvalidArgument(
            "unable to configure the daemon: the following directives are specified both as a "
            "flag and in the configuration file: " + ", ".join(both)
        )
    for key in doc:
        if key not in _FILE_KEYS and key not in ("runtimes", "debug"):
            log.warning("daemon.json: ignoring unsupported option %r", key)

    def pick(key: str) -> Any:
        value = getattr(args, _FILE_KEYS[key], None)
        return doc.get(key) if value is None else value

    runtimes = _default_runtimes()
    for name, entry in (doc.get("runtimes") or {}).items():
        if not isinstance(entry, dict) or not entry.get("path"):
            raise InvalidArgument(f"runtime {name}: a path is required")
        runtimes[name] = RuntimeOption(name, str(entry["path"]), tuple(entry.get("runtimeArgs") or ()))

    hosts = pick("hosts")
    if isinstance(hosts, str):
        hosts = [hosts]
    log_level = pick("log-level") or ("debug" if (args.debug or doc.get("debug")) else "info")
    requested_runtime = str(pick("default-runtime") or "") or None
    if requested_runtime is not None and requested_runtime not in runtimes:
        raise InvalidArgument(f"default runtime {requested_runtime!r} is not a configured runtime")

    live_restore = pick("live-restore")
    if live_restore is not None and not isinstance(live_restore, bool):
        raise InvalidArgument("invalid live-restore: expected true or false")
    shutdown_timeout = pick("shutdown-timeout")
    if shutdown_timeout is not None and (isinstance(shutdown_timeout, bool) or not isinstance(shutdown_timeout, int)
                                         or shutdown_timeout < 0):  # fmt: skip
        raise InvalidArgument("invalid shutdown-timeout: expected a number of seconds >= 0")
    log_config = daemon_log_config(str(pick("log-driver") or ""), _log_opts(pick("log-opts")))

    seccomp_profile, seccomp_json = _seccomp_profile(pick("seccomp-profile"))
    no_new_privileges = pick("no-new-privileges")
    if not isinstance(no_new_privileges, bool | None):
        raise InvalidArgument(f"unable to configure the daemon: no-new-privileges must be true or false, not {no_new_privileges!r}")

    network = _network_defaults(pick)
    monitor = pick("monitor")
    if monitor is not None and monitor not in tuple(MonitorChoice):
        raise InvalidArgument(f"unable to configure the daemon: monitor must be one of {', '.join(MonitorChoice)}, not {monitor!r}")

    insecure = pick("insecure-registries") or []
    if isinstance(insecure, str) or not all(isinstance(i, str) for i in insecure):
        raise InvalidArgument("unable to configure the daemon: insecure-registries must be a list of strings")
    mirrors = pick("registry-mirrors") or []
    if isinstance(mirrors, str) or not all(isinstance(m, str) for m in mirrors):
        raise InvalidArgument("unable to configure the daemon: registry-mirrors must be a list of strings")
    mirrors = [validate_mirror(m) for m in mirrors]
    certs_dir = pick("registry-certs-dir")
    if certs_dir is not None and not isinstance(certs_dir, str):
        raise InvalidArgument("unable to configure the daemon: registry-certs-dir must be a path")

    tls = None
    if pick("tlsverify") or pick("tlscert"):
        tls = TlsOptions(
            verify=bool(pick("tlsverify")),
            ca_cert=_path(pick("tlscacert")),
            cert=_path(pick("tlscert")),
            key=_path(pick("tlskey")),
        )
    return DaemonConfig(
        hosts=tuple(_normalise_host(h) for h in (hosts or [DEFAULT_HOST])),
        data_root=Path(pick("data-root") or "/var/lib/dockyard").absolute(),
        exec_root=Path(pick("exec-root") or "/run/dockyard").absolute(),
        pidfile=Path(pick("pidfile") or "/var/run/dockyard.pid").absolute(),
        log_level=str(log_level),
        default_runtime=requested_runtime or "runc",
        requested_runtime=requested_runtime,
        runtimes=runtimes,
        tls=tls,
        log_config=log_config,
        live_restore=True if live_restore is None else live_restore,
        shutdown_timeout=15 if shutdown_timeout is None else shutdown_timeout,
        seccomp_profile=seccomp_profile,
        seccomp_profile_json=seccomp_json,
        no_new_privileges=bool(no_new_privileges),
        network=network,
        monitor=MonitorChoice.AUTO if monitor is None else MonitorChoice(monitor),
        insecure_registries=tuple(insecure),
        registry_mirrors=tuple(mirrors),
        registry_certs_dir=Path(certs_dir or "/etc/docker/certs.d").absolute(),
    )


def _network_defaults(pick: Any) -> NetworkDefaults:
    """bridge, bip, fixed-cidr, mtu, icc, ip-masq, default-address-pools, dns* from flags or the file."""

    def strings(key: str) -> tuple[str, ...]:
        value = pick(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidArgument(f"unable to configure the daemon: {key} must be a list of strings")
        return tuple(value)

    def flag(key: str) -> bool:
        value = pick(key)
        if value is not None and not isinstance(value, bool):
            raise InvalidArgument(f"unable to configure the daemon: {key} must be true or false")
        return True if value is None else value

    pools = pick("default-address-pools")
    if pools and all(isinstance(p, str) for p in pools):  # --default-address-pool base=...,size=...
        pools = [_pool_flag(p) for p in pools]
    mtu = pick("mtu")
    if mtu is not None and (isinstance(mtu, bool) or not isinstance(mtu, int) or not 0 <= mtu <= 65535):
        raise InvalidArgument("unable to configure the daemon: invalid mtu")
    return NetworkDefaults(
        bridge=str(pick("bridge") or "dockyard0"),
        bip=str(pick("bip") or ""),
        fixed_cidr=str(pick("fixed-cidr") or ""),
        mtu=mtu or 0,
        icc=flag("icc"),
        ip_masq=flag("ip-masq"),
        iptables=flag("iptables"),
        firewall_table=_table_name(pick("firewall-table")),
        host_binding_ipv4=_host_ip(pick("ip")),
        address_pools=parse_address_pools(pools) if pools else (),
        dns=strings("dns"),
        dns_search=strings("dns-search"),
        dns_options=strings("dns-opts"),
    )


def _host_ip(value: Any) -> str:
    if value is None:
        return "0.0.0.0"
    try:
        return str(ipaddress.ip_address(value if isinstance(value, str) else ""))
    except ValueError:
        raise InvalidArgument(f"unable to configure the daemon: invalid ip {value!r}: an IP address") from None


def _table_name(value: Any) -> str:
    if value is None:
        return "dockyard"
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,31}", value):
        raise InvalidArgument(f"unable to configure the daemon: invalid firewall-table {value!r}: a letter, then letters, digits or _ (at most 32)")
    return value


def _pool_flag(text: str) -> dict[str, Any]:
    """dockerd's --default-address-pool base=10.10.0.0/16,size=24."""
    fields = dict(part.partition("=")[::2] for part in text.split(","))
    try:
        return {"base": fields["base"], "size": int(fields["size"])}
    except (KeyError, ValueError):
        raise InvalidArgument(f"invalid default-address-pool {text!r}: use base=CIDR,size=N") from None


def _flag_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value: {text!r}")


def _seccomp_profile(value: Any) -> tuple[str, str]:
    """daemon.json seccomp-profile -> (setting, the file's JSON); a bad file stops the daemon."""
    if value is None or value in ("", "builtin"):
        return "builtin", ""
    if not isinstance(value, str):
        raise InvalidArgument(f"unable to configure the daemon: seccomp-profile must be a path, not {value!r}")
    if value == "unconfined":
        return value, ""
    try:
        text = Path(value).read_text()
    except OSError as exc:
        raise InvalidArgument(f"opening seccomp profile ({value}) failed: {exc.strerror or exc}") from exc
    try:
        parse_profile(text)
    except InvalidArgument as exc:
        raise InvalidArgument(f"seccomp profile ({value}): {exc.message}") from exc
    return value, text


def _log_opts(value: Any) -> dict[str, str]:
    """daemon.json's log-opts object, or the --log-opt KEY=VALUE flags."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    opts = {}
    for item in value:
        key, sep, val = str(item).partition("=")
        if not sep:
            raise InvalidArgument(f"invalid log-opt {item!r}: use KEY=VALUE")
        opts[key] = val
    return opts


def _path(value: Any) -> Path | None:
    return Path(value) if value else None


def _normalise_host(host: str) -> str:
    if host.startswith(("unix://", "tcp://", "fd://")):
        return host
    if host.startswith("/"):
        return "unix://" + host
    raise InvalidArgument(f"invalid host {host!r}: use unix:///path or tcp://host:port")


def parse_daemon_args(argv: Sequence[str]) -> DaemonConfig:
    parser = argparse.ArgumentParser(
        prog="dockyardd", description="the dockyard container engine daemon", allow_abbrev=False
    )
    add_daemon_flags(parser)
    args = parser.parse_args(argv)
    given = any(a == "--config-file" or a.startswith("--config-file=") for a in argv)
    return load_config(args, config_file_given=given)
