"""Daemon configuration: dockerd's flags plus a daemon.json, never the same option twice."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dockyard.config import DEFAULT_HOST, DaemonConfig, RuntimeOption, RuntimeOrigin, TlsOptions, parse_daemon_args
from dockyard.errors import InvalidArgument


def _write(tmp_path: Path, doc: Any) -> Path:
    path = tmp_path / "daemon.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _parse(tmp_path: Path, *argv: str, doc: Any) -> DaemonConfig:
    """Parse argv with `doc` written to a daemon.json named by --config-file."""
    return parse_daemon_args([*argv, f"--config-file={_write(tmp_path, doc)}"])


@pytest.fixture()
def no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the *default* config file path a missing file in tmp_path."""
    from dockyard import config

    missing = tmp_path / "etc" / "daemon.json"
    original = config.add_daemon_flags

    def flags(parser: Any) -> None:
        original(parser)
        parser.set_defaults(config_file=str(missing))

    monkeypatch.setattr(config, "add_daemon_flags", flags)
    return missing


def test_defaults(no_file: Path) -> None:
    cfg = parse_daemon_args([])
    assert cfg.hosts == (DEFAULT_HOST,)
    assert cfg.hosts == ("unix:///var/run/docker.sock",)
    assert cfg.data_root == Path("/var/lib/dockyard")
    assert cfg.exec_root == Path("/run/dockyard")
    assert cfg.pidfile == Path("/var/run/dockyard.pid")
    assert cfg.log_level == "info"
    assert cfg.default_runtime == "runc"  # until start-up picks the fastest that works
    assert cfg.requested_runtime is None
    assert set(cfg.runtimes) >= {"runc", "crun"}
    assert cfg.runtimes["runc"].name == "runc" and cfg.runtimes["runc"].path.endswith("runc")
    assert {o.origin for o in cfg.runtimes.values()} == {RuntimeOrigin.BUILTIN}
    assert all(o.launcher == () for o in cfg.runtimes.values())
    assert cfg.tls is None


def test_flags_only(no_file: Path, tmp_path: Path) -> None:
    cfg = parse_daemon_args(
        ["-H", "unix:///tmp/d.sock", "--data-root", str(tmp_path / "data"), "--exec-root", str(tmp_path / "run"),
         "-p", str(tmp_path / "d.pid"), "--log-level", "warn", "--default-runtime", "crun"]
    )  # fmt: skip
    assert cfg.hosts == ("unix:///tmp/d.sock",)
    assert cfg.data_root == tmp_path / "data"
    assert cfg.exec_root == tmp_path / "run"
    assert cfg.pidfile == tmp_path / "d.pid"
    assert cfg.log_level == "warn"
    assert cfg.default_runtime == "crun"
    assert cfg.requested_runtime == "crun"


def test_relative_paths_made_absolute(no_file: Path) -> None:
    cfg = parse_daemon_args(["--data-root", "rel/data"])
    assert cfg.data_root.is_absolute()
    assert cfg.data_root.parts[-2:] == ("rel", "data")


def test_debug_flag(no_file: Path) -> None:
    assert parse_daemon_args(["-D"]).log_level == "debug"
    assert parse_daemon_args(["--debug"]).log_level == "debug"
    assert parse_daemon_args(["-D", "-l", "error"]).log_level == "error"


def test_bad_log_level_rejected_by_argparse(no_file: Path) -> None:
    with pytest.raises(SystemExit):
        parse_daemon_args(["--log-level", "verbose"])


def test_host_repeatable(no_file: Path) -> None:
    cfg = parse_daemon_args(
        ["-H", "unix:///a.sock", "--host", "tcp://0.0.0.0:2376", "-H", "/b.sock"]
    )
    assert cfg.hosts == ("unix:///a.sock", "tcp://0.0.0.0:2376", "unix:///b.sock")


@pytest.mark.parametrize(
    ("host", "expected"),
    [("/var/run/x.sock", "unix:///var/run/x.sock"), ("unix:///x.sock", "unix:///x.sock"),
     ("tcp://127.0.0.1:2375", "tcp://127.0.0.1:2375"), ("fd://", "fd://")],
)  # fmt: skip
def test_host_normalisation(no_file: Path, host: str, expected: str) -> None:
    assert parse_daemon_args(["-H", host]).hosts == (expected,)


@pytest.mark.parametrize("host", ["localhost:2375", "relative.sock", "http://x:1", "udp://x:1", ""])
def test_invalid_host(no_file: Path, host: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_daemon_args(["-H", host])
    assert info.value.message == f"invalid host {host!r}: use unix:///path or tcp://host:port"


def test_file_keys(tmp_path: Path) -> None:
    doc = {
        "hosts": ["unix:///f.sock", "/g.sock"],
        "data-root": str(tmp_path / "data"),
        "exec-root": str(tmp_path / "run"),
        "pidfile": str(tmp_path / "f.pid"),
        "log-level": "error",
        "default-runtime": "fast",
        "runtimes": {"fast": {"path": "/opt/fast", "runtimeArgs": ["--debug", "--x=1"]}},
    }
    cfg = _parse(tmp_path, doc=doc)
    assert cfg.hosts == ("unix:///f.sock", "unix:///g.sock")
    assert cfg.data_root == tmp_path / "data"
    assert cfg.exec_root == tmp_path / "run"
    assert cfg.pidfile == tmp_path / "f.pid"
    assert cfg.log_level == "error"
    assert cfg.default_runtime == "fast"
    assert cfg.requested_runtime == "fast"
    assert cfg.runtimes["fast"] == RuntimeOption("fast", "/opt/fast", ("--debug", "--x=1"), RuntimeOrigin.CONFIGURED)
    assert "runc" in cfg.runtimes  # defaults are kept beside configured ones
    assert cfg.runtime("") == cfg.runtimes["fast"]
    assert cfg.runtime("runc") == cfg.runtimes["runc"]


def test_file_runtime_overrides_builtin(tmp_path: Path) -> None:
    cfg = _parse(tmp_path, doc={"runtimes": {"runc": {"path": "/opt/my-runc"}}})
    assert cfg.runtimes["runc"] == RuntimeOption("runc", "/opt/my-runc", ())


@pytest.mark.parametrize("entry", [{}, {"path": ""}, "just-a-path", {"runtimeArgs": ["x"]}])
def test_file_runtime_needs_path(tmp_path: Path, entry: Any) -> None:
    with pytest.raises(InvalidArgument, match="runtime bad: a path is required"):
        _parse(tmp_path, doc={"runtimes": {"bad": entry}})


def test_file_hosts_as_string(tmp_path: Path) -> None:
    assert _parse(tmp_path, doc={"hosts": "/one.sock"}).hosts == ("unix:///one.sock",)


def test_file_debug(tmp_path: Path) -> None:
    assert _parse(tmp_path, doc={"debug": True}).log_level == "debug"


def test_file_and_flags_mix_without_overlap(tmp_path: Path) -> None:
    cfg = _parse(tmp_path, "-H", "/flag.sock", doc={"data-root": str(tmp_path / "d")})
    assert cfg.hosts == ("unix:///flag.sock",)
    assert cfg.data_root == tmp_path / "d"


@pytest.mark.parametrize(
    ("argv", "doc", "names"),
    [
        (["-H", "/a.sock"], {"hosts": ["/b.sock"]}, "hosts"),
        (["--data-root", "/x"], {"data-root": "/y"}, "data-root"),
        (["--exec-root", "/x"], {"exec-root": "/y"}, "exec-root"),
        (["-p", "/x.pid"], {"pidfile": "/y.pid"}, "pidfile"),
        (["-l", "info"], {"log-level": "debug"}, "log-level"),
        (["--default-runtime", "runc"], {"default-runtime": "runc"}, "default-runtime"),
        (["--tlsverify"], {"tlsverify": True}, "tlsverify"),
        (["--tlscert", "/c"], {"tlscert": "/d"}, "tlscert"),
        (
            ["-H", "/a.sock", "--data-root", "/x"],
            {"hosts": ["/b"], "data-root": "/y"},
            "hosts, data-root",
        ),
    ],
)
def test_same_option_in_flag_and_file(
    tmp_path: Path, argv: list[str], doc: dict[str, Any], names: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        _parse(tmp_path, *argv, doc=doc)
    assert info.value.message == (
        "unable to configure the daemon: the following directives are specified both as a flag "
        "and in the configuration file: " + names
    )


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    for argv in (["--config-file", str(missing)], [f"--config-file={missing}"]):
        with pytest.raises(InvalidArgument) as info:
            parse_daemon_args(argv)
        assert (
            info.value.message
            == f"unable to configure the daemon: open {missing}: no such file or directory"
        )


def test_missing_default_config_file_is_fine(no_file: Path) -> None:
    assert not no_file.exists()
    assert parse_daemon_args([]).hosts == (DEFAULT_HOST,)


def test_default_config_file_is_read(no_file: Path) -> None:
    no_file.parent.mkdir()
    no_file.write_text(json.dumps({"log-level": "warn"}))
    assert parse_daemon_args([]).log_level == "warn"


def test_abbreviated_flags_are_refused(tmp_path: Path) -> None:
    # As dockerd's flag parser: no abbreviations, so a misspelt flag cannot slip through.
    with pytest.raises(SystemExit):
        parse_daemon_args(["--config", str(tmp_path / "nope.json")])


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_config_file(tmp_path: Path, text: str) -> None:
    assert _parse(tmp_path, doc=text).hosts == (DEFAULT_HOST,)


@pytest.mark.parametrize(("text", "why"), [("{not json", "unable to configure the daemon with file "),
                                           ("[1, 2]", "not a JSON object")])  # fmt: skip
def test_bad_config_file(tmp_path: Path, text: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why):
        _parse(tmp_path, doc=text)


def test_unknown_file_key_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = _parse(tmp_path, doc={"storage-driver": "overlay2"})
    assert cfg.hosts == (DEFAULT_HOST,)
    assert "storage-driver" in caplog.text


def test_unknown_default_runtime_flag(no_file: Path) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_daemon_args(["--default-runtime", "kata"])
    assert info.value.message == "default runtime 'kata' is not a configured runtime"


def test_unknown_default_runtime_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="default runtime 'kata' is not a configured runtime"):
        _parse(tmp_path, doc={"default-runtime": "kata"})


def test_runtime_lookup_unknown(no_file: Path) -> None:
    cfg = parse_daemon_args([])
    with pytest.raises(InvalidArgument, match="unknown or invalid runtime name: kata"):
        cfg.runtime("kata")


def test_tlsverify_flags(no_file: Path) -> None:
    cfg = parse_daemon_args(
        ["--tlsverify", "--tlscacert", "/c/ca.pem", "--tlscert", "/c/cert.pem", "--tlskey", "/c/key.pem",
         "-H", "tcp://0.0.0.0:2376"]
    )  # fmt: skip
    assert cfg.tls == TlsOptions(True, Path("/c/ca.pem"), Path("/c/cert.pem"), Path("/c/key.pem"))
    assert cfg.hosts == ("tcp://0.0.0.0:2376",)


def test_tls_without_verify(no_file: Path) -> None:
    cfg = parse_daemon_args(["--tlscert", "/c/cert.pem", "--tlskey", "/c/key.pem"])
    assert cfg.tls == TlsOptions(False, None, Path("/c/cert.pem"), Path("/c/key.pem"))


def test_tlsverify_alone(no_file: Path) -> None:
    assert parse_daemon_args(["--tlsverify"]).tls == TlsOptions(True, None, None, None)


def test_tls_options_from_file(tmp_path: Path) -> None:
    cfg = _parse(
        tmp_path, doc={"tlsverify": True, "tlscacert": "/ca", "tlscert": "/cert", "tlskey": "/key"}
    )
    assert cfg.tls == TlsOptions(True, Path("/ca"), Path("/cert"), Path("/key"))


def test_no_tls_with_only_ca(no_file: Path) -> None:
    assert parse_daemon_args(["--tlscacert", "/ca"]).tls is None


def test_firewall_defaults_flags_and_file(no_file: Path, tmp_path: Path) -> None:
    cfg = parse_daemon_args([])
    assert cfg.network.iptables is True and cfg.network.firewall_table == "dockyard"
    cfg = parse_daemon_args(["--iptables=false", "--firewall-table", "dy_two"])
    assert cfg.network.iptables is False and cfg.network.firewall_table == "dy_two"
    cfg = _parse(tmp_path, doc={"iptables": False, "firewall-table": "other"})
    assert cfg.network.iptables is False and cfg.network.firewall_table == "other"


@pytest.mark.parametrize("table", ["1abc", "a-b", "x" * 33, "", 5])
def test_bad_firewall_table_is_refused(tmp_path: Path, table: object) -> None:
    with pytest.raises(InvalidArgument, match="invalid firewall-table"):
        _parse(tmp_path, doc={"firewall-table": table})


def test_iptables_must_be_a_bool(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="iptables must be true or false"):
        _parse(tmp_path, doc={"iptables": "no"})


def test_the_default_host_address_of_published_ports(no_file: Path, tmp_path: Path) -> None:
    assert parse_daemon_args([]).network.host_binding_ipv4 == "0.0.0.0"
    assert parse_daemon_args(["--ip", "127.0.0.1"]).network.host_binding_ipv4 == "127.0.0.1"
    assert _parse(tmp_path, doc={"ip": "::1"}).network.host_binding_ipv4 == "::1"
    for bad in ("localhost", 5):
        with pytest.raises(InvalidArgument, match="invalid ip"):
            _parse(tmp_path, doc={"ip": bad})


def test_registry_mirrors_and_certs_dir(tmp_path: Path, no_file: Path) -> None:
    cfg = _parse(tmp_path, doc={"registry-mirrors": ["https://m.example", "http://127.0.0.1:5000/"],
                                "registry-certs-dir": str(tmp_path / "certs.d")})  # fmt: skip
    assert cfg.registry_mirrors == ("https://m.example/", "http://127.0.0.1:5000/")
    assert cfg.registry_certs_dir == tmp_path / "certs.d"
    flags = parse_daemon_args(["--registry-mirror", "https://a.example", "--registry-mirror", "https://b.example",
                               "--registry-certs-dir", "rel/certs"])  # fmt: skip
    assert flags.registry_mirrors == ("https://a.example/", "https://b.example/")
    assert flags.registry_certs_dir == Path("rel/certs").absolute()
    assert parse_daemon_args([]).registry_certs_dir == Path("/etc/docker/certs.d")
    with pytest.raises(InvalidArgument, match="invalid mirror: unsupported scheme"):
        _parse(tmp_path, doc={"registry-mirrors": ["m.example"]})
    with pytest.raises(InvalidArgument, match="registry-mirrors must be a list"):
        _parse(tmp_path, doc={"registry-mirrors": "https://m.example"})
    with pytest.raises(InvalidArgument, match="both as a flag and in the configuration file: registry-mirrors"):
        _parse(tmp_path, "--registry-mirror", "https://a.example", doc={"registry-mirrors": ["https://b.example"]})
