"""Docker image references: parsing, normalising and printing "busybox:latest" and friends.

The grammar and the normalisation rules (docker.io, library/, legacy index.docker.io) follow
distribution/reference, the package dockerd and the docker CLI use, so that a name means the
same thing here as on the client. Error wording is dockerd's: clients print it verbatim.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

from dockyard.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
MAX_PATH_LENGTH = 255

# The grammar, piece by piece (ASCII only: Go's \w is ASCII, Python's is not without re.ASCII).
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REMOTE = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_REMOTE}"

_REFERENCE_RE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?", re.ASCII)
_NAME_RE = re.compile(rf"(?:({_DOMAIN})/)?({_REMOTE})", re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}", re.ASCII)

# Digest algorithms dockerd accepts, with the hex length each one needs.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST_ANY_RE = re.compile(_DIGEST, re.ASCII)
_LOWER_HEX_RE = re.compile(r"[a-f0-9]+", re.ASCII)

# Input longer than any valid reference is refused before it reaches the regular expressions.
_MAX_INPUT = 4096


@dataclass(frozen=True)
class Reference:
    """A normalised named reference: domain and path always set, tag and digest optional."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, e.g. "docker.io/library/busybox"."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The short name users type: "busybox", "apimap/bb", "127.0.0.1:5000/x/y"."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        if self.path.startswith(OFFICIAL_PREFIX):
            rest = self.path[len(OFFICIAL_PREFIX) :]
            # "library/a/b" stays as it is: only single-component official names shorten.
            if "/" not in rest:
                return rest
        return self.path

    def familiar(self) -> str:
        """The familiar name with tag and/or digest, as `docker images` shows it."""
        return self.familiar_name + self._suffix()

    def with_default_tag(self) -> Reference:
        """The same reference, tagged "latest" if it has neither tag nor digest."""
        if self.tag is None and self.digest is None:
            return replace(self, tag=DEFAULT_TAG)
        return self

    def with_tag(self, tag: str) -> Reference:
        """The same repository with `tag` (a digest, if any, is kept, as distribution does)."""
        return replace(self, tag=validate_tag(tag))

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to `digest`, without a tag."""
        return replace(self, tag=None, digest=validate_digest(digest))

    def repository(self) -> Reference:
        """The bare repository: no tag, no digest."""
        return replace(self, tag=None, digest=None)

    def _suffix(self) -> str:
        suffix = ""
        if self.tag is not None:
            suffix += ":" + self.tag
        if self.digest is not None:
            suffix += "@" + self.digest
        return suffix

    def __str__(self) -> str:
        return self.name + self._suffix()


def validate_tag(tag: str) -> str:
    """Return `tag` if it is a valid tag, else raise dockerd's "invalid tag format"."""
    if not _TAG_RE.fullmatch(tag):
        raise InvalidArgument("invalid tag format")
    return tag


def validate_digest(digest: str) -> str:
    """Return `digest` if it is a well-formed digest of a supported algorithm.

    Messages are go-digest's, which dockerd passes through.
    """
    algorithm, sep, encoded = digest.partition(":")
    if not algorithm or not sep or not encoded:
        raise InvalidArgument("invalid checksum digest format")
    size = _DIGEST_HEX_LENGTH.get(algorithm)
    if size is None:
        if not _DIGEST_ANY_RE.fullmatch(digest):
            raise InvalidArgument("invalid checksum digest format")
        raise InvalidArgument("unsupported digest algorithm")
    if len(encoded) != size:
        raise InvalidArgument("invalid checksum digest length")
    if not _LOWER_HEX_RE.fullmatch(encoded):
        raise InvalidArgument("invalid checksum digest format")
    return digest


def is_digest(text: str) -> bool:
    """True if `text` is a well-formed digest of a supported algorithm ("sha256:<64 hex>")."""
    try:
        validate_digest(text)
    except InvalidArgument:
        return False
    return True


def _split_docker_domain(text: str) -> tuple[str, str]:
    """Split off the registry domain; names without one belong to Docker Hub."""
    first, slash, rest = text.partition("/")
    if not slash:
        # A single component ("ubuntu", "ubuntu:22.04") is always an official Hub image.
        return DEFAULT_DOMAIN, OFFICIAL_PREFIX + text
    if first == "localhost" or "." in first or ":" in first:
        domain, remainder = first, rest
    elif first.lower() != first:
        # Hub namespaces are lowercase, so an uppercase first component must be a host.
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, text
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse_reference(text: str) -> Reference:
    """Parse a familiar or full reference the way dockerd's ParseNormalizedNamed does.

    A bare 64-hex string is refused: it is an image id, and callers look ids up first.
    """
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidArgument(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    if len(text) > _MAX_INPUT:
        raise InvalidArgument("invalid reference format")
    domain, remainder = _split_docker_domain(text)
    remote = re.split(r"[:@]", remainder, maxsplit=1)[0]
    if remote.lower() != remote:
        raise InvalidArgument(
            f"invalid reference format: repository name ({remote}) must be lowercase"
        )
    full = f"{domain}/{remainder}"
    match = _REFERENCE_RE.fullmatch(full)
    if match is None:
        if _REFERENCE_RE.fullmatch(full.lower()):
            raise InvalidArgument("invalid reference format: repository name must be lowercase")
        raise InvalidArgument("invalid reference format")
    name, tag, digest = match.group(1), match.group(2), match.group(3)
    name_match = _NAME_RE.fullmatch(name)
    if name_match is None or name_match.group(1) is None:  # pragma: no cover - domain is forced
        raise InvalidArgument("invalid reference format")
    path = name_match.group(2)
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidArgument(f"repository name must not be more than {MAX_PATH_LENGTH} characters")
    if digest is not None:
        validate_digest(digest)
    return Reference(domain=name_match.group(1), path=path, tag=tag, digest=digest)


def parse_repository_tag(repo: str, tag: str) -> Reference:
    """Combine the `repo` and `tag` query parameters of pull, import, tag and commit.

    `tag` may be empty (keep the tag in `repo`, else "latest") or a digest ("sha256:..."),
    which replaces any tag. The result always has a tag or a digest.
    """
    # `docker pull -a` sends "name:" with an empty tag; dockerd tolerates it.
    repo = repo.removesuffix(":")
    ref = parse_reference(repo)
    if tag:
        if is_digest(tag):
            ref = ref.with_digest(tag)
        else:
            ref = ref.with_tag(tag)
    return ref.with_default_tag()


def familiar_tag(name: str) -> str:
    """`docker.io/library/busybox:latest` as users write it: `busybox:latest`."""
    return parse_reference(name).familiar()


def display_name(name: str) -> str:
    """A name as dockerd's messages show it (the tag added), or as given if it is none."""
    try:
        ref = parse_reference(name)
    except InvalidArgument:
        return name
    return ref.with_default_tag().familiar()


def tag_matches(pattern: str, full_name: str) -> bool:
    """`docker images --filter reference=`: Go's path.Match of the pattern against the familiar
    "name:tag" (or "name@digest"), else against the familiar name alone (FamiliarMatch)."""
    familiar = familiar_tag(full_name)
    name = familiar.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if "@" not in familiar and ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    return path_match(pattern, familiar) or path_match(pattern, name)


def path_match(pattern: str, text: str) -> bool:
    """Go's path.Match: `*` and `?` never cross a `/`; `[...]`, `[^...]` classes; `\\` escapes.
    A malformed pattern matches nothing (Go reports ErrBadPattern; dockerd lists nothing)."""
    regex = _glob_regex(pattern)
    return regex is not None and regex.fullmatch(text) is not None


@functools.lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str] | None:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 >= len(pattern):
                return None
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                return None
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            if not body:
                return None
            items = "".join(re.escape(ch) if ch != "-" else "-" for ch in body)
            out.append(f"[^/{items}]" if negate else f"[{items}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))

