"""`--change` instructions for commit and import, and the Dockerfile word/line layers below."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.model.changes import apply_changes
from dockyard.model.dockerfile import (
    CmdCommand,
    EnvCommand,
    Instruction,
    KeyValue,
    logical_lines,
    parse_command,
    parse_go_duration,
    parse_instruction,
    parse_instructions,
)
from dockyard.model.images import HealthConfig, ImageConfig
from dockyard.model.shellwords import ShellLexer, env_mapping, extract_flags, split_words

BASE = ImageConfig(
    env=("PATH=/usr/bin:/bin", "HOME=/root"),
    cmd=("sh",),
    labels={"keep": "me"},
    exposed_ports=("22/tcp",),
    volumes=("/old",),
    working_dir="/srv",
)


def apply(*changes: str, config: ImageConfig = BASE) -> ImageConfig:
    return apply_changes(config, changes)


def error_of(*changes: str, config: ImageConfig = BASE) -> str:
    with pytest.raises(InvalidArgument) as info:
        apply_changes(config, changes)
    return info.value.message


# --- apply_changes: whole instructions -------------------------------------------------


def test_no_changes_returns_the_config_itself() -> None:
    assert apply_changes(BASE, []) is BASE


def test_cmd_exec_and_shell_forms() -> None:
    assert apply('CMD ["echo", "hi there"]').cmd == ("echo", "hi there")
    assert apply('CMD echo $HOME "quoted"').cmd == ("/bin/sh", "-c", 'echo $HOME "quoted"')
    assert apply("CMD []").cmd == ()
    assert apply("CMD").cmd == ()


def test_shell_form_uses_the_image_shell() -> None:
    config = ImageConfig(shell=("/bin/bash", "-xc"))
    assert apply("CMD ls -l", config=config).cmd == ("/bin/bash", "-xc", "ls -l")


def test_malformed_json_is_shell_form() -> None:
    assert apply('CMD ["unclosed"').cmd == ("/bin/sh", "-c", '["unclosed"')
    assert apply("CMD [NaN]").cmd == ("/bin/sh", "-c", "[NaN]")
    deep = "[" * 100_000
    assert apply(f"CMD {deep}").cmd == ("/bin/sh", "-c", deep)


def test_json_array_of_non_strings_is_an_error() -> None:
    assert error_of('CMD ["a", 1]') == (
        "when using JSON array syntax, arrays must be comprised of strings only"
    )


def test_entrypoint_resets_the_image_cmd() -> None:
    result = apply('ENTRYPOINT ["/app"]')
    assert result.entrypoint == ("/app",)
    assert result.cmd is None


def test_cmd_given_with_entrypoint_survives_in_either_order() -> None:
    before = apply('CMD ["--help"]', 'ENTRYPOINT ["/app"]')
    after = apply('ENTRYPOINT ["/app"]', 'CMD ["--help"]')
    assert before.cmd == after.cmd == ("--help",)
    assert before.entrypoint == after.entrypoint == ("/app",)


def test_entrypoint_shell_form_and_empty() -> None:
    assert apply("ENTRYPOINT exec /app").entrypoint == ("/bin/sh", "-c", "exec /app")
    assert apply("ENTRYPOINT []").entrypoint == ()


def test_env_forms() -> None:
    result = apply('ENV A=1 B="two words" C=x\\ y', "ENV LEGACY value with spaces")
    assert result.env == (
        "PATH=/usr/bin:/bin", "HOME=/root", "A=1", "B=two words", "C=x y",
        "LEGACY=value with spaces",
    )  # fmt: skip


def test_env_replaces_in_place_and_later_wins() -> None:
    result = apply("ENV HOME=/home/u", "ENV A=1", "ENV A=2")
    assert result.env == ("PATH=/usr/bin:/bin", "HOME=/home/u", "A=2")


def test_env_expands_against_the_env_before_the_instruction() -> None:
    result = apply("ENV A=1", "ENV A=2 B=$A", 'ENV P="$PATH:/opt" Q=${MISSING:-dflt}')
    env = env_mapping(result.env)
    assert env["B"] == "1" and env["A"] == "2"
    assert env["P"] == "/usr/bin:/bin:/opt"
    assert env["Q"] == "dflt"


def test_env_single_quotes_do_not_expand() -> None:
    assert env_mapping(apply("ENV A='$HOME'").env)["A"] == "$HOME"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("ENV", "ENV requires at least one argument"),
        ("ENV ONLYKEY", "ENV must have two arguments"),
        ("ENV A=1 B", 'Syntax error - can\'t find = in "B". Must be of the form: name=value'),
        ("ENV =x", "ENV names can not be blank"),
        ("LABEL", "LABEL requires at least one argument"),
        ("LABEL k", "LABEL must have two arguments"),
        ('ENV A="open', ('failed to process "\\"open": '
         "unexpected end of statement while looking for matching double-quote")),
    ],
)  # fmt: skip
def test_env_and_label_errors(change: str, message: str) -> None:
    assert error_of(change) == message


def test_labels_merge_and_do_not_touch_the_input() -> None:
    result = apply('LABEL a=b "c d"="e f" keep=new', "LABEL legacy some value", "LABEL h=$HOME")
    assert result.labels == {
        "keep": "new", "a": "b", "c d": "e f", "legacy": "some value", "h": "/root",
    }  # fmt: skip
    assert BASE.labels == {"keep": "me"}


def test_expose() -> None:
    result = apply("EXPOSE 80 53/udp", "EXPOSE 8000-8002/TCP 9/sctp", "EXPOSE 80/tcp")
    assert result.exposed_ports == (
        "22/tcp", "53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp", "9/sctp",
    )  # fmt: skip


def test_expose_expands_to_several_words() -> None:
    assert apply('ENV PORTS="81 82/udp"', "EXPOSE $PORTS").exposed_ports == (
        "22/tcp", "81/tcp", "82/udp",
    )  # fmt: skip


def test_expose_takes_the_container_side_of_a_mapping() -> None:
    assert apply("EXPOSE 127.0.0.1:8080:80").exposed_ports == ("22/tcp", "80/tcp")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("EXPOSE", "EXPOSE requires at least one argument"),
        ("EXPOSE http", "invalid containerPort: http"),
        ("EXPOSE 70000", "invalid containerPort: 70000"),
        ("EXPOSE 90-80", "invalid containerPort: 90-80"),
        ("EXPOSE 80/xyz", "invalid proto: xyz"),
        ("EXPOSE /tcp", "no port specified: /tcp<empty>"),
    ],
)
def test_expose_errors(change: str, message: str) -> None:
    assert error_of(change) == message


def test_user_workdir_stopsignal() -> None:
    result = apply("USER app:app", "WORKDIR rel/../sub", "STOPSIGNAL SIGINT")
    assert result.user == "app:app"
    assert result.working_dir == "/srv/sub"
    assert result.stop_signal == "SIGINT"


def test_workdir_absolute_is_kept_and_relative_starts_at_root() -> None:
    assert apply("WORKDIR /a/b").working_dir == "/a/b"
    assert apply("WORKDIR x", config=ImageConfig()).working_dir == "/x"
    assert apply("WORKDIR /a", "WORKDIR b", "WORKDIR ../c").working_dir == "/a/c"
    assert apply("WORKDIR /a", "WORKDIR ../../..//c/.").working_dir == "/c"
    assert apply("WORKDIR $HOME/app").working_dir == "/root/app"


def test_user_and_stopsignal_expand_variables() -> None:
    result = apply("ENV U=nobody S=9", "USER $U", "STOPSIGNAL $S")
    assert (result.user, result.stop_signal) == ("nobody", "9")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("USER", "USER requires exactly one argument"),
        ("WORKDIR", "WORKDIR requires exactly one argument"),
        ("WORKDIR $NOPE", "cannot normalize nothing"),
        ("STOPSIGNAL", "STOPSIGNAL requires exactly one argument"),
        ("STOPSIGNAL SIGFOO", "Invalid signal: SIGFOO"),
        ("STOPSIGNAL 0", "Invalid signal: 0"),
    ],
)
def test_single_argument_errors(change: str, message: str) -> None:
    assert error_of(change) == message


def test_volume_forms() -> None:
    assert apply("VOLUME /data /logs").volumes == ("/data", "/logs", "/old")
    assert apply('VOLUME ["/a b", "/c"]').volumes == ("/a b", "/c", "/old")
    assert apply("VOLUME $HOME").volumes == ("/old", "/root")


def test_volume_errors() -> None:
    assert error_of("VOLUME") == "VOLUME requires at least one argument"
    assert error_of('VOLUME ["/a", " "]') == "VOLUME specified can not be an empty string"
    assert error_of("VOLUME $NOPE") == "VOLUME specified can not be an empty string"


def test_onbuild_keeps_the_trigger_line() -> None:
    result = apply("ONBUILD RUN echo $HOME", "onbuild   copy . /app")
    assert result.on_build == ("RUN echo $HOME", "copy . /app")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("ONBUILD", "ONBUILD requires at least one argument"),
        ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("ONBUILD from scratch", "FROM isn't allowed as an ONBUILD trigger"),
        ("ONBUILD MAINTAINER me", "MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("ONBUILD ENV X", "ENV must have two arguments"),
    ],
)
def test_onbuild_errors(change: str, message: str) -> None:
    assert error_of(change) == message


def test_healthcheck_shell_and_exec_forms() -> None:
    shell = apply("HEALTHCHECK --interval=1m30s --timeout=5s --retries=3 CMD curl -f x || exit 1")
    assert shell.healthcheck == HealthConfig(
        test=("CMD-SHELL", "curl -f x || exit 1"),
        interval_ns=90_000_000_000, timeout_ns=5_000_000_000, retries=3,
    )  # fmt: skip
    exec_form = apply('HEALTHCHECK --start-period=2s --start-interval=500ms CMD ["/ok", "-v"]')
    assert exec_form.healthcheck == HealthConfig(
        test=("CMD", "/ok", "-v"), start_period_ns=2_000_000_000, start_interval_ns=500_000_000
    )


def test_healthcheck_none_ignores_flags() -> None:
    assert apply("HEALTHCHECK --bogus=1 none").healthcheck == HealthConfig(test=("NONE",))


def test_healthcheck_zero_interval_means_default() -> None:
    health = apply("HEALTHCHECK --interval=0s CMD true").healthcheck
    assert health is not None and health.interval_ns == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("HEALTHCHECK", "HEALTHCHECK requires at least one argument"),
        ("HEALTHCHECK NONE x", "HEALTHCHECK NONE takes no arguments"),
        ("HEALTHCHECK CMD", "Missing command after HEALTHCHECK CMD"),
        ("HEALTHCHECK RUN x", 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
        ("HEALTHCHECK --interval=10us CMD x", 'Interval "interval" cannot be less than 1ms'),
        ("HEALTHCHECK --timeout=-1s CMD x", 'Interval "timeout" cannot be less than 1ms'),
        ("HEALTHCHECK --interval=5 CMD x", 'time: missing unit in duration "5"'),
        ("HEALTHCHECK --retries=-1 CMD x", "--retries cannot be negative (-1)"),
        ("HEALTHCHECK --retries=x CMD x", 'strconv.ParseInt: parsing "x": invalid syntax'),
        ("HEALTHCHECK --retries=9999999999 CMD x",
         'strconv.ParseInt: parsing "9999999999": value out of range'),
        ("HEALTHCHECK --bogus=1 CMD x", "unknown flag: --bogus"),
        ("HEALTHCHECK --retries=1 --retries=2 CMD x", "duplicate flag specified: --retries"),
        ("HEALTHCHECK --retries CMD x", "missing a value on flag: --retries"),
    ],
)  # fmt: skip
def test_healthcheck_errors(change: str, message: str) -> None:
    assert error_of(change) == message


def test_flags_on_plain_instructions_are_refused() -> None:
    assert error_of("CMD --help") == "unknown flag: --help"
    assert error_of("ENV --x=1 A=b") == "unknown flag: --x"


def test_keywords_are_case_insensitive() -> None:
    result = apply('cmd ["a"]', "Env K=v", "uSeR bob")
    assert (result.cmd, result.env[-1], result.user) == (("a",), "K=v", "bob")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("RUN echo hi", "RUN is not a valid change command"),
        ("from scratch", "from is not a valid change command"),
        ("COPY a b", "COPY is not a valid change command"),
        ('SHELL ["/bin/bash"]', "SHELL is not a valid change command"),
        ("NOPE x", "NOPE is not a valid change command"),
    ],
)
def test_instructions_that_are_not_changes(change: str, message: str) -> None:
    assert error_of(change) == message


def test_invalid_instruction_anywhere_stops_everything() -> None:
    assert error_of('CMD ["ok"]', "RUN x") == "RUN is not a valid change command"
    # Argument errors are found before anything is applied, whatever the order.
    assert error_of("STOPSIGNAL SIGTERM", "USER") == "USER requires exactly one argument"


def test_blank_and_comment_only_changes() -> None:
    assert error_of("") == "file with no instructions"
    assert error_of("# just a comment", "   ") == "file with no instructions"


def test_one_change_may_hold_several_lines() -> None:
    result = apply("ENV A=1\n# comment\nUSER bob", "LABEL x=1 \\\n  y=2")
    assert result.user == "bob" and env_mapping(result.env)["A"] == "1"
    assert result.labels == {"keep": "me", "x": "1", "y": "2"}


def test_result_is_a_new_frozen_config() -> None:
    result = apply("USER x")
    assert result is not BASE and BASE.user == ""
    assert result.cmd == BASE.cmd and result.exposed_ports == BASE.exposed_ports


# --- lines and instructions ----------------------------------------------------------


def test_logical_lines() -> None:
    text = "  CMD a \\\n  b  \n# note\n\nUSER x\r\nENV A=1 \\\n# inner comment\n\n  B=2"
    assert logical_lines(text) == ["CMD a   b  ", "USER x", "ENV A=1   B=2"]
    # A continuation may run over comments and blank lines into the next instruction.
    assert logical_lines("LABEL a=1 \\ \n# c\n\nUSER x") == ["LABEL a=1 USER x"]


def test_logical_lines_continuation_at_end_of_text() -> None:
    assert logical_lines("CMD a \\") == ["CMD a "]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('CMD ["a", "b"]', Instruction("CMD", ("a", "b"), is_json=True)),
        ("CMD a  b", Instruction("CMD", ("a  b",))),
        ("ENV A=1 B='x y'", Instruction("ENV", ("A", "1", "=", "B", "'x y'", "="))),
        ("ENV A  1 2", Instruction("ENV", ("A", "1 2", ""))),
        ("EXPOSE 80   81/udp", Instruction("EXPOSE", ("80", "81/udp"))),
        ("USER a b", Instruction("USER", ("a b",))),
        ("VOLUME /a /b", Instruction("VOLUME", ("/a", "/b"))),
        ('VOLUME ["/a"]', Instruction("VOLUME", ("/a",), is_json=True)),
        ("ONBUILD  RUN x", Instruction("ONBUILD", ("RUN", "RUN x"))),
        ("HEALTHCHECK --retries=2 CMD a b", Instruction("HEALTHCHECK", ("CMD", "a b"),
                                                        ("--retries=2",))),
        ('HEALTHCHECK CMD ["a"]', Instruction("HEALTHCHECK", ("CMD", "a"), is_json=True)),
        ("HEALTHCHECK NONE", Instruction("HEALTHCHECK", ("NONE",))),
        ("WEIRD stuff", Instruction("WEIRD")),
        ("CMD", Instruction("CMD")),
    ],
)  # fmt: skip
def test_parse_instruction(line: str, expected: Instruction) -> None:
    assert parse_instruction(line) == replace_original(expected, line)


def replace_original(instr: Instruction, line: str) -> Instruction:
    return Instruction(instr.keyword, instr.args, instr.flags, instr.is_json, line)


def test_instruction_command_is_lowercase() -> None:
    assert parse_instruction("HealthCheck NONE").command == "healthcheck"


def test_parse_instructions_and_commands() -> None:
    [env, cmd] = parse_instructions("ENV A=1 B=2\nCMD x")
    assert parse_command(env) == EnvCommand((KeyValue("A", "1"), KeyValue("B", "2")))
    assert parse_command(cmd) == CmdCommand(("x",), prepend_shell=True)


def test_parse_command_refuses_other_instructions() -> None:
    with pytest.raises(InvalidArgument, match="^unknown instruction: RUN$"):
        parse_command(parse_instruction("RUN x"))


# --- words -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rest", "words"),
    [
        ("a b  c", ["a", "b", "c"]),
        ('A="x y" B=z', ['A="x y"', "B=z"]),
        ("A='x \\' y", ["A='x \\'", "y"]),
        ('A="x \\" y"', ['A="x \\" y"']),
        ("a\\ b c", ["a\\ b", "c"]),
        ('""', ['""']),
        ("a\\", ["a"]),
        ("", []),
    ],
)
def test_split_words(rest: str, words: list[str]) -> None:
    assert split_words(rest) == words


@pytest.mark.parametrize(
    ("line", "flags", "rest"),
    [
        ('--a=1 --b="x y" CMD z', ["--a=1", "--b=x y"], "CMD z"),
        ("CMD --a=1", [], "CMD --a=1"),
        ("-- --a=1 x", [], " --a=1 x"),
        ("--a=1 -- --b x", ["--a=1"], " --b x"),
        ("--only", ["--only"], ""),
        ("  --x=a\\ b  rest", ["--x=a b"], "rest"),
        ("", [], ""),
    ],
)
def test_extract_flags(line: str, flags: list[str], rest: str) -> None:
    assert extract_flags(line) == (flags, rest)


ENV = {"A": "hello", "EMPTY": "", "SP": "x  y"}
LEX = ShellLexer()


@pytest.mark.parametrize(
    ("word", "result"),
    [
        ("plain", "plain"),
        ("$A", "hello"),
        ("${A}!", "hello!"),
        ("$A_x", ""),  # the name runs on: A_x is unset
        ("$NOPE", ""),
        ("${NOPE:-dflt}", "dflt"),
        ("${EMPTY:-dflt}", "dflt"),
        ("${EMPTY-dflt}", ""),
        ("${NOPE-dflt}", "dflt"),
        ("${A:+alt}", "alt"),
        ("${EMPTY:+alt}", ""),
        ("${EMPTY+alt}", "alt"),
        ("${NOPE+alt}", ""),
        ("${A:-$NOPE}", "hello"),
        ("${NOPE:-${A}x}", "hellox"),
        ("${A#he}", "llo"),
        ("${A#*l}", "lo"),
        ("${A##*l}", "o"),
        ("${A%l*}", "hel"),
        ("${A%%l*}", "he"),
        ("${A%?}", "hell"),
        ("${A/l/L}", "heLlo"),
        ("${A//l/L}", "heLLo"),
        ("'$A'", "$A"),
        ('"$A world"', "hello world"),
        ('"a\\"b"', 'a"b'),
        ('"a\\nb"', "a\\nb"),
        ('"\\$A"', "$A"),
        ("a\\ b", "a b"),
        ("\\$A", "$A"),
        ("a\\", "a"),
        ("$", "$"),
        ("a$", "a$"),
        ("$1", ""),
        ("$$", ""),
        ("${A}${A}", "hellohello"),
        ("\"x\"'y'z", "xyz"),
    ],
)
def test_process_word(word: str, result: str) -> None:
    assert LEX.process_word(word, ENV) == result


@pytest.mark.parametrize(
    ("word", "words"),
    [
        ("a b", ["a", "b"]),
        ("$SP", ["x", "y"]),
        ('"$SP"', ["x  y"]),
        ("'a b' c", ["a b", "c"]),
        ("a\\ b c", ["a b", "c"]),
        ('""', []),
        ("  ", []),
        ("x$SP", ["xx", "y"]),
    ],
)
def test_process_words(word: str, words: list[str]) -> None:
    assert LEX.process_words(word, ENV) == words


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${A", "syntax error: missing '}'"),
        ("${", "syntax error: missing '}'"),
        ("${}", "syntax error: bad substitution"),
        ("${:-x}", "syntax error: bad substitution"),
        ("${A:-x", "syntax error: missing '}'"),
        ("${A:x}", "unsupported modifier (:x) in substitution"),
        ("${A:#x}", "unsupported modifier (:#) in substitution"),
        ("${NOPE?}", "NOPE: is not allowed to be unset"),
        ("${NOPE?custom}", "NOPE: custom"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("'open", "unexpected end of statement while looking for matching single-quote"),
        ('"open', "unexpected end of statement while looking for matching double-quote"),
        ("${A/x", "syntax error: missing '/' in ${}"),
        ("${A#\\q}", "invalid pattern (\\q) in substitution: invalid escape '\\q'"),
    ],
)
def test_process_word_errors(word: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        LEX.process_word(word, ENV)
    assert info.value.message.endswith(message)
    assert info.value.message.startswith("failed to process ")


def test_lexer_other_escape() -> None:
    assert ShellLexer(escape="`").process_word("a`$A\\b", ENV) == "a$A\\b"


def test_env_mapping_later_wins() -> None:
    assert env_mapping(["A=1", "B", "A=2=3"]) == {"A": "2=3", "B": ""}


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0), ("1ns", 1), ("1us", 1_000), ("1µs", 1_000), ("1ms", 1_000_000),
        ("1s", 10**9), ("1.5s", 1_500_000_000), (".5s", 500_000_000), ("1m30s", 90 * 10**9),
        ("2h", 7200 * 10**9), ("-1s", -(10**9)), ("+3ms", 3_000_000), ("1h1m1s1ms", 3661001000000),
    ],
)  # fmt: skip
def test_parse_go_duration(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("s", 'time: invalid duration "s"'),
        ("1", 'time: missing unit in duration "1"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("1.s", "ok"),
        ("-", 'time: invalid duration "-"'),
        ("3000000h", 'time: invalid duration "3000000h"'),
    ],
)
def test_parse_go_duration_errors(text: str, message: str) -> None:
    if message == "ok":
        assert parse_go_duration(text) == 10**9
        return
    with pytest.raises(InvalidArgument) as info:
        parse_go_duration(text)
    assert info.value.message == message
