"""Container names: generated "adjective_surname" names and validation of user-given ones."""

from __future__ import annotations

import random
import re

from dockyard.errors import InvalidArgument

# The characters dockerd allows, quoted verbatim in its error message.
VALID_NAME_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
_VALID_NAME_RE = re.compile(rf"{VALID_NAME_CHARS}+", re.ASCII)

ADJECTIVES: tuple[str, ...] = (
    "agile", "amber", "ardent", "azure", "bold", "boring", "brave", "breezy", "bright",
    "busy", "calm", "candid", "careful", "cheerful", "clever", "cosmic", "crisp", "curious",
    "daring", "dazzling", "eager", "earnest", "elated", "elegant", "epic", "fearless",
    "festive", "focused", "frosty", "gallant", "gentle", "glowing", "graceful", "happy",
    "hardy", "humble", "jolly", "keen", "kind", "lively", "lucid", "lucky", "mellow",
    "merry", "mighty", "modest", "nimble", "noble", "patient", "peaceful", "plucky", "polite",
    "quiet", "quirky", "radiant", "rapid", "serene", "sharp", "shiny", "sleepy", "snappy",
    "steady", "sunny", "swift", "tender", "thirsty", "tidy", "upbeat", "vivid", "witty",
    "zealous", "zesty",
)  # fmt: skip

SURNAMES: tuple[str, ...] = (
    "agnesi", "alhazen", "archimedes", "babbage", "backus", "bardeen", "bell", "bernoulli",
    "bohr", "boole", "borg", "bose", "boyle", "brahe", "cantor", "carson", "cavendish", "cerf",
    "chandrasekhar", "clarke", "copernicus", "corbato", "cori", "curie", "darwin", "dijkstra",
    "dirac", "doppler", "edison", "einstein", "engelbart", "euclid", "euler", "faraday",
    "fermat", "fermi", "feynman", "fibonacci", "franklin", "galileo", "galois", "gauss",
    "germain", "goodall", "hamilton", "hamming", "hawking", "heisenberg", "hertz", "hilbert",
    "hodgkin", "hollerith", "hopper", "hubble", "huygens", "hypatia", "jemison", "johnson",
    "joule", "kahn", "kelvin", "kepler", "khayyam", "knuth", "kowalevski", "lamarr", "lamport",
    "laplace", "leakey", "leavitt", "leibniz", "liskov", "lovelace", "lumiere", "maxwell",
    "mayer", "mccarthy", "meitner", "mendel", "mendeleev", "minsky", "mirzakhani", "morse",
    "napier", "nash", "neumann", "newton", "nobel", "noether", "ohm", "pascal", "pasteur",
    "pauli", "pavlov", "planck", "poincare", "ptolemy", "ramanujan", "ritchie", "rubin",
    "rutherford", "sagan", "shannon", "shockley", "somerville", "stallman", "tesla",
    "thompson", "torvalds", "turing", "vaughan", "volta", "wiles", "wilson", "wing", "wozniak",
    "wright", "yalow", "yonath", "zuse",
)  # fmt: skip

# dockerd's one exception, kept as a fun fact: Steve Wozniak is not boring.
_FORBIDDEN = "boring_wozniak"


def generate_name(rand: random.Random | None = None, retry: int = 0) -> str:
    """A random "adjective_surname" name such as "eager_curie".

    On a retry after a name clash a random digit is appended ("eager_curie7"), as dockerd does,
    which makes a second clash much less likely.
    """
    pick = rand if rand is not None else random.Random()
    while True:
        name = f"{pick.choice(ADJECTIVES)}_{pick.choice(SURNAMES)}"
        if name != _FORBIDDEN:
            break
    if retry > 0:
        name += str(pick.randrange(10))
    return name


def validate_name(name: str) -> str:
    """Check a user-given container name; return it without its optional leading "/"."""
    bare = name.removeprefix("/")
    if not _VALID_NAME_RE.fullmatch(bare):
        raise InvalidArgument(
            f"Invalid container name ({name}), only {VALID_NAME_CHARS} are allowed"
        )
    return bare
