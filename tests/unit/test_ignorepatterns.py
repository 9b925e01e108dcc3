""".dockerignore matching (model/ignorepatterns.py), moby's patternmatcher rules."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.ignorepatterns import can_skip_dir, is_ignored, parse_ignore_file


def _ignored(patterns: str, path: str) -> bool:
    return is_ignored(path, parse_ignore_file(patterns))


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        ("*.log", "a.log", True),
        ("*.log", "dir/a.log", False),  # * stays within one element
        ("**/*.log", "dir/sub/a.log", True),
        ("**/*.log", "a.log", True),
        ("dir", "dir/deep/file", True),  # a parent directory matches
        ("/dir", "dir/file", True),  # a leading slash is dropped
        ("./dir/", "dir/file", True),  # cleaned like a path
        ("dir/**", "dir/x/y", True),
        ("dir/**", "other", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[ab]x", "bx", True),
        ("[!ab]x", "cx", True),
        ("[!ab]x", "ax", False),
        ("# comment\n\n", "# comment", False),
        ("\\*x", "*x", True),
        ("\\*x", "ax", False),
    ],
)
def test_patterns(patterns: str, path: str, expected: bool) -> None:
    assert _ignored(patterns, path) is expected


def test_the_last_matching_pattern_wins() -> None:
    patterns = "*.md\n!README.md\n"
    assert _ignored(patterns, "notes.md")
    assert not _ignored(patterns, "README.md")
    assert _ignored(patterns + "README*\n", "README.md")


def test_exclusion_under_an_ignored_directory() -> None:
    patterns = parse_ignore_file("docs\n!docs/keep.txt\n")
    assert is_ignored("docs/other.txt", patterns)
    assert not is_ignored("docs/keep.txt", patterns)
    assert not can_skip_dir("docs", patterns)  # something below may come back
    assert can_skip_dir("docs", parse_ignore_file("docs\n"))


def test_bad_patterns() -> None:
    with pytest.raises(InvalidArgument):
        parse_ignore_file("!\n")
    with pytest.raises(InvalidArgument):
        parse_ignore_file("[abc\n")
