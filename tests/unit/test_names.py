"""Container names: generated names and dockerd's validation rule."""

from __future__ import annotations

import random
import re

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model import names
from dockyard.model.names import ADJECTIVES, SURNAMES, generate_name, validate_name


def test_lists_are_clean() -> None:
    for word in (*ADJECTIVES, *SURNAMES):
        assert re.fullmatch(r"[a-z]+", word), word
    assert len(set(ADJECTIVES)) == len(ADJECTIVES) >= 50
    assert len(set(SURNAMES)) == len(SURNAMES) >= 100


def test_generated_names_have_the_docker_shape_and_are_valid() -> None:
    rand = random.Random(7)
    for _ in range(500):
        name = generate_name(rand)
        adjective, surname = name.split("_")
        assert adjective in ADJECTIVES and surname in SURNAMES
        assert validate_name(name) == name


def test_generation_is_reproducible_with_a_seeded_random() -> None:
    first = [generate_name(random.Random(42)) for _ in range(3)]
    assert len(set(first)) == 1


def test_generation_without_random_varies() -> None:
    assert len({generate_name() for _ in range(50)}) > 1


def test_retry_appends_a_digit() -> None:
    name = generate_name(random.Random(1), retry=1)
    assert re.fullmatch(r"[a-z]+_[a-z]+[0-9]", name)


class _Scripted(random.Random):
    """Picks "boring" and "wozniak" first, then something else."""

    def __init__(self) -> None:
        super().__init__(0)
        self.calls = 0

    def choice(self, seq):  # type: ignore[no-untyped-def]
        self.calls += 1
        if self.calls <= 2:
            return "boring" if seq is ADJECTIVES else "wozniak"
        return seq[0]


def test_steve_wozniak_is_not_boring() -> None:
    assert "boring" in ADJECTIVES and "wozniak" in SURNAMES
    rand = _Scripted()
    assert generate_name(rand) == f"{ADJECTIVES[0]}_{SURNAMES[0]}"
    assert rand.calls == 4


@pytest.mark.parametrize(
    ("given", "expected"),
    [("web", "web"), ("/web", "web"), ("a1", "a1"), ("My_app.v2-x", "My_app.v2-x"), ("00", "00")],
)
def test_valid_names(given: str, expected: str) -> None:
    assert validate_name(given) == expected


@pytest.mark.parametrize("given", ["", "/", "a", "/a", "_web", ".web", "-web", "web app",
                                   "web/app", "//web", "wéb", "web\n"])  # fmt: skip
def test_invalid_names(given: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        validate_name(given)
    assert info.value.message == (
        f"Invalid container name ({given}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
    )


def test_forbidden_name_constant() -> None:
    assert names._FORBIDDEN == "boring_wozniak"
