"""model/buildfile.py: a whole Dockerfile, as dockerd's classic builder parses it."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.buildfile import (
    ArgCommand,
    ArgDecl,
    CopyCommand,
    FromCommand,
    MaintainerCommand,
    ParseError,
    RunCommand,
    ShellCommand,
    logical_lines,
    parse_buildfile,
)
from dockyard.model.dockerfile import CmdCommand, EnvCommand, KeyValue, LabelCommand
from dockyard.model.shellwords import ShellLexer


def _error(text: str) -> str:
    with pytest.raises(InvalidArgument) as info:
        parse_buildfile(text)
    return info.value.message


# --- lines and directives ----------------------------------------------------------------


def test_continuations_comments_and_blank_lines_keep_the_first_line_number() -> None:
    _, lines = logical_lines("FROM a\n\n# a comment\nRUN echo one \\\n  # inside\n\n  two\nCMD x\n")
    assert [(line.number, line.text) for line in lines] == [(1, "FROM a"), (4, "RUN echo one   two"), (8, "CMD x")]


def test_the_escape_directive_changes_the_continuation_character() -> None:
    directives, lines = logical_lines("# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo\n")
    assert directives.escape == "`"
    assert lines[1].text == "RUN dir c:\\   && echo"


def test_directives_only_at_the_top_and_syntax_is_noted_but_ignored() -> None:
    directives, lines = logical_lines("# syntax=docker/dockerfile:1\n# escape=\\\nFROM a\n# escape=`\nRUN x \\\n y\n")
    assert directives.syntax == "docker/dockerfile:1" and directives.escape == "\\"
    assert lines[1].text == "RUN x  y"  # the late "escape=`" line is a comment


def test_a_directive_after_a_comment_is_a_comment() -> None:
    directives, _ = logical_lines("# hello\n# escape=`\nFROM a\n")
    assert directives.escape == "\\"


def test_bad_escape_and_duplicate_directives_are_refused() -> None:
    assert "invalid escape token 'x'" in _error("# escape=x\nFROM a\n")
    assert "only one escape parser directive" in _error("# escape=`\n# escape=`\nFROM a\n")


def test_crlf_and_a_byte_order_mark() -> None:
    bf = parse_buildfile("\ufeffFROM a\r\nRUN echo \\\r\n hi\r\n")
    step = bf.stages[0].steps[0]
    assert isinstance(step.command, RunCommand) and step.command.cmdline == ("echo  hi",)


# --- instructions ------------------------------------------------------------------------


def test_instruction_names_are_case_insensitive() -> None:
    bf = parse_buildfile("from a AS Build\nrun echo\nCmd [\"sh\"]\n")
    assert bf.stages[0].name == "build"
    commands = [s.command for s in bf.stages[0].steps]
    assert commands == [RunCommand(("echo",), True), CmdCommand(("sh",), False)]


def test_unknown_instruction_names_its_line() -> None:
    assert _error("FROM a\nRUN x\nFOO bar\n") == "dockerfile parse error on line 3: unknown instruction: FOO"


def test_a_bad_argument_names_its_line() -> None:
    assert _error("FROM a\n\nENV\n") == "dockerfile parse error on line 3: ENV requires at least one argument"


def test_json_exec_form_and_shell_form() -> None:
    bf = parse_buildfile('FROM a\nRUN ["echo", "a b"]\nRUN echo "a b"\nRUN [not json\n')
    steps = [s.command for s in bf.stages[0].steps]
    assert steps[0] == RunCommand(("echo", "a b"), False)
    assert steps[1] == RunCommand(('echo "a b"',), True)
    assert steps[2] == RunCommand(("[not json",), True)


def test_json_arrays_must_hold_strings() -> None:
    assert "arrays must be comprised of strings only" in _error('FROM a\nCMD ["a", 1]\n')


def test_copy_and_add_flags() -> None:
    bf = parse_buildfile("FROM a\nCOPY --from=build --chown=1:2 --chmod=640 a b /d/\nADD x.tar /\n")
    copy, add = (s.command for s in bf.stages[0].steps)
    assert copy == CopyCommand(("a", "b"), "/d/", False, "1:2", "640", "build")
    assert add == CopyCommand(("x.tar",), "/", True)
    assert "unknown flag: --from" in _error("FROM a\nADD --from=x a b\n")
    assert "only one was provided" in _error("FROM a\nCOPY a\n")


def test_copy_json_form() -> None:
    bf = parse_buildfile('FROM a\nCOPY ["a b", "/dest dir/"]\n')
    assert bf.stages[0].steps[0].command == CopyCommand(("a b",), "/dest dir/")


def test_run_flags_are_buildkits() -> None:
    assert "unknown flag: --mount" in _error("FROM a\nRUN --mount=type=cache,target=/x true\n")


def test_shell_must_be_json_and_maintainer() -> None:
    bf = parse_buildfile('FROM a\nSHELL ["/bin/ash", "-c"]\nMAINTAINER me <m@e>\n')
    assert [s.command for s in bf.stages[0].steps] == [ShellCommand(("/bin/ash", "-c")), MaintainerCommand("me <m@e>")]
    assert "SHELL requires the arguments to be in JSON form" in _error("FROM a\nSHELL /bin/sh -c\n")


def test_env_and_label_forms() -> None:
    bf = parse_buildfile('FROM a\nENV A=1 B="two words"\nENV C three words\nLABEL "k"="v"\n')
    env1, env2, label = (s.command for s in bf.stages[0].steps)
    assert env1 == EnvCommand((KeyValue("A", "1"), KeyValue("B", '"two words"')))
    assert env2 == EnvCommand((KeyValue("C", "three words"),))
    assert label == LabelCommand((KeyValue('"k"', '"v"'),))


# --- stages and ARG ----------------------------------------------------------------------


def test_args_before_from_are_meta_args_and_count_as_steps() -> None:
    bf = parse_buildfile("ARG V=1\nARG W\nFROM a:$V AS one\nRUN x\nFROM one\nCMD y\n")
    assert bf.meta_args == (ArgDecl("V", "1"), ArgDecl("W", None))
    assert [s.start for s in bf.stages] == [FromCommand("a:$V", "one"), FromCommand("one", "")]
    assert bf.step_count == 6


def test_only_arg_may_come_before_from() -> None:
    assert _error("RUN x\nFROM a\n") == "dockerfile parse error on line 1: no build stage in current context"
    assert "no build stage" in _error("ARG x\n")


def test_arg_declarations() -> None:
    bf = parse_buildfile("FROM a\nARG A B=2 C=\n")
    assert bf.stages[0].steps[0].command == ArgCommand((ArgDecl("A", None), ArgDecl("B", "2"), ArgDecl("C", "")))


def test_stage_names_by_name_and_index() -> None:
    bf = parse_buildfile("FROM a AS Build\nFROM b\nFROM c AS last\n")
    assert bf.stage_index("build") == 0 and bf.stage_index("BUILD") == 0
    assert bf.stage_index("1") == 1 and bf.stage_index("3") is None and bf.stage_index("nope") is None


def test_target_keeps_the_stages_up_to_it() -> None:
    bf = parse_buildfile("FROM a AS one\nRUN x\nFROM b AS two\nFROM c\n")
    assert [s.name for s in bf.up_to("two").stages] == ["one", "two"]
    assert bf.up_to("two").step_count == 3
    with pytest.raises(InvalidArgument, match="failed to reach build target nope"):
        bf.up_to("nope")


def test_bad_stage_names() -> None:
    assert "invalid name for build stage" in _error("FROM a AS 1x\n")
    assert "duplicate stage name" in _error("FROM a AS x\nFROM b AS x\n")
    assert "FROM requires either one or three arguments" in _error("FROM a b\n")
    assert "FROM requires either one or three arguments" in _error("FROM a IS b\n")


def test_from_platform_flag() -> None:
    bf = parse_buildfile("FROM --platform=linux/amd64 a\n")
    assert bf.stages[0].start.platform == "linux/amd64"


def test_empty_files() -> None:
    with pytest.raises(ParseError, match="file with no instructions"):
        parse_buildfile("# only a comment\n\n")


# --- expansion as moby's shell lexer does it ---------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "a"),
        ("${A}", "a"),
        ("x${A}y", "xay"),
        ("${UNSET:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${A:+alt}", "alt"),
        ("${UNSET:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("\\$A", "$A"),
        ("'$A'", "$A"),
        ('"$A b"', "a b"),
        ("$", "$"),
        ("${A:-${B}}", "a"),
        ("${UNSET:-${B}}", "b"),
    ],
)
def test_expansion(word: str, expected: str) -> None:
    env = {"A": "a", "B": "b", "EMPTY": ""}
    assert ShellLexer().process_word(word, env) == expected


def test_expansion_with_the_backtick_escape() -> None:
    assert ShellLexer("`").process_word("`$A", {"A": "a"}) == "$A"


def test_an_unclosed_brace_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="missing '}'"):
        ShellLexer().process_word("${A", {})
