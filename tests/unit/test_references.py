"""Image references: distribution/reference normalisation and dockerd's error wording."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.references import (
    Reference,
    is_digest,
    parse_reference,
    parse_repository_tag,
    validate_digest,
    validate_tag,
)

HEX = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa"
DIGEST = f"sha256:{HEX}"


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", None, None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        ("user/x", "docker.io", "user/x", None, None),
        ("docker.io/foo", "docker.io", "library/foo", None, None),
        ("docker.io/library/foo", "docker.io", "library/foo", None, None),
        ("index.docker.io/foo/bar", "docker.io", "foo/bar", None, None),
        ("docker.io/library/foo/bar", "docker.io", "library/foo/bar", None, None),
        ("localhost/x", "localhost", "x", None, None),
        ("localhost:5000/x", "localhost:5000", "x", None, None),
        ("127.0.0.1:5099/a/b:1", "127.0.0.1:5099", "a/b", "1", None),
        ("example.com/private/moonbase", "example.com", "private/moonbase", None, None),
        ("test-com:8080/foo", "test-com:8080", "foo", None, None),
        ("test_com/foo", "docker.io", "test_com/foo", None, None),
        ("xn--n3h.com:18080/foo", "xn--n3h.com:18080", "foo", None, None),
        ("[fc00::1]:5000/docker/docker", "[fc00::1]:5000", "docker/docker", None, None),
        ("Foo/bar", "Foo", "bar", None, None),  # uppercase first component is a host
        (f"x@{DIGEST}", "docker.io", "library/x", None, DIGEST),
        (f"x:tag@{DIGEST}", "docker.io", "library/x", "tag", DIGEST),
        ("a/b:Tag_1.x-Y", "docker.io", "a/b", "Tag_1.x-Y", None),
        ("dock__er/do-ck---er", "docker.io", "dock__er/do-ck---er", None, None),
        (HEX[:-1], "docker.io", "library/" + HEX[:-1], None, None),  # 63 hex is a name
        (f"docker.io/{HEX}", "docker.io", f"library/{HEX}", None, None),
    ],
)
def test_parse(text: str, domain: str, path: str, tag: str | None, digest: str | None) -> None:
    assert parse_reference(text) == Reference(domain, path, tag, digest)


@pytest.mark.parametrize(
    ("text", "full", "familiar_name", "familiar"),
    [
        ("busybox", "docker.io/library/busybox", "busybox", "busybox"),
        ("busybox:latest", "docker.io/library/busybox:latest", "busybox", "busybox:latest"),
        ("apimap/bb:1", "docker.io/apimap/bb:1", "apimap/bb", "apimap/bb:1"),
        ("127.0.0.1:5000/x/y", "127.0.0.1:5000/x/y", "127.0.0.1:5000/x/y", "127.0.0.1:5000/x/y"),
        ("library/foo/bar", "docker.io/library/foo/bar", "library/foo/bar", "library/foo/bar"),
        ("example.com/library/x", "example.com/library/x", "example.com/library/x",
         "example.com/library/x"),
        (f"x@{DIGEST}", f"docker.io/library/x@{DIGEST}", "x", f"x@{DIGEST}"),
        (f"x:1@{DIGEST}", f"docker.io/library/x:1@{DIGEST}", "x", f"x:1@{DIGEST}"),
    ],
)  # fmt: skip
def test_printing(text: str, full: str, familiar_name: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar_name == familiar_name
    assert ref.familiar() == familiar
    assert parse_reference(full) == ref  # the full form parses back to the same reference


def test_name_is_full_repository() -> None:
    assert parse_reference("busybox:1").name == "docker.io/library/busybox"
    assert parse_reference("localhost:5000/a/b").name == "localhost:5000/a/b"


def test_with_default_tag() -> None:
    assert parse_reference("busybox").with_default_tag().tag == "latest"
    assert parse_reference("busybox:1").with_default_tag().tag == "1"
    pinned = parse_reference(f"busybox@{DIGEST}").with_default_tag()
    assert pinned.tag is None and pinned.digest == DIGEST


def test_with_tag_digest_and_repository() -> None:
    ref = parse_reference(f"busybox:1@{DIGEST}")
    assert ref.with_tag("2") == Reference("docker.io", "library/busybox", "2", DIGEST)
    assert ref.with_digest(DIGEST).tag is None
    assert ref.repository() == Reference("docker.io", "library/busybox")
    with pytest.raises(InvalidArgument, match="^invalid tag format$"):
        ref.with_tag("-bad")


def test_reference_is_frozen_and_hashable() -> None:
    ref = parse_reference("busybox")
    assert {ref, parse_reference("docker.io/library/busybox")} == {ref}
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
        ("docker/Docker", "invalid reference format: repository name (docker/Docker) must be lowercase"),
        ("docker.io/docker/Docker:1",
         "invalid reference format: repository name (docker/Docker) must be lowercase"),
        (HEX, f"invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings"),
        ("", "invalid reference format"),
        ("-docker", "invalid reference format"),
        ("-docker/docker", "invalid reference format"),
        ("docker-/docker", "invalid reference format"),
        ("docker///docker", "invalid reference format"),
        ("docker/", "invalid reference format"),
        ("____/____", "invalid reference format"),
        ("dock..er/docker", "invalid reference format"),
        ("https://github.com/docker/docker", "invalid reference format"),
        ("[fc00::1]:5000", "invalid reference format"),
        ("fc00::1:5000/debian", "invalid reference format"),
        ("x:", "invalid reference format"),
        ("x:-tag", "invalid reference format"),
        ("x:" + "t" * 129, "invalid reference format"),
        ("x@sha256:abc", "invalid reference format"),
        ("busybox\n", "invalid reference format"),
        (f"x@sha256:{HEX.upper()}", "invalid checksum digest format"),
        (f"x@sha256:{HEX}aa", "invalid checksum digest length"),
        (f"x@md5:{HEX[:32]}", "unsupported digest algorithm"),
        ("a/" + "b" * 254, "repository name must not be more than 255 characters"),
    ],
)  # fmt: skip
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_reference(text)
    assert info.value.message == message


def test_path_of_255_is_allowed() -> None:
    assert len(parse_reference("a/" + "b" * 253).path) == 255


def test_hostile_input_fails_fast() -> None:
    for text in ("a-" * 3000 + "!", "x/" + "a_" * 3000, "A" + "-a" * 3000 + "-/x"):
        with pytest.raises(InvalidArgument):
            parse_reference(text)


def test_validate_tag() -> None:
    assert validate_tag("v1.2_3-rc") == "v1.2_3-rc"
    assert validate_tag("_x") == "_x"
    assert validate_tag("t" * 128)
    for bad in ("", ".x", "-x", "t" * 129, "a:b", "é"):
        with pytest.raises(InvalidArgument, match="^invalid tag format$"):
            validate_tag(bad)


def test_validate_digest() -> None:
    assert validate_digest(DIGEST) == DIGEST
    assert validate_digest("sha512:" + "a" * 128)
    assert is_digest(DIGEST)
    assert not is_digest(HEX)
    assert not is_digest("sha256:")
    assert not is_digest("latest")


@pytest.mark.parametrize(
    ("repo", "tag", "expected"),
    [
        ("docker.io/apimap/bb", "1", "docker.io/apimap/bb:1"),
        ("apimap/bb", "", "docker.io/apimap/bb:latest"),
        ("apimap/imported:1", "", "docker.io/apimap/imported:1"),  # docker import
        ("apimap/imported:1", "2", "docker.io/apimap/imported:2"),
        ("busybox", DIGEST, f"docker.io/library/busybox@{DIGEST}"),
        ("busybox:1", DIGEST, f"docker.io/library/busybox@{DIGEST}"),
        (f"busybox@{DIGEST}", "", f"docker.io/library/busybox@{DIGEST}"),
        ("busybox:", "", "docker.io/library/busybox:latest"),  # pull -a sends a trailing ":"
        ("localhost:5000/x", "", "localhost:5000/x:latest"),
    ],
)
def test_parse_repository_tag(repo: str, tag: str, expected: str) -> None:
    assert str(parse_repository_tag(repo, tag)) == expected


def test_parse_repository_tag_errors() -> None:
    with pytest.raises(InvalidArgument, match="^invalid tag format$"):
        parse_repository_tag("busybox", "bad tag")
    with pytest.raises(InvalidArgument, match="^invalid tag format$"):
        parse_repository_tag("busybox", "sha256:nothex")
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        parse_repository_tag("Busybox", "1")
