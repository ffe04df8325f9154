"""The README and docs/ stay true: short, every command named, links that resolve, a current config reference.

Unit tier (no TensorFlow), except the last test: it runs the README's cheap commands in a copy of the
repository and checks that they leave `git status` clean (slow).
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import re
import shutil
import subprocess
import sys
import typing

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(REPO, "README.md")
MAX_README_LINES = 300
CLI_SECTION = "## The CLI at a glance"


def read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def section(text: str, heading: str) -> str:
    """From `heading` to the next heading of the same or a higher level."""
    start = text.index(heading + "\n") + len(heading) + 1
    level = heading.split(" ")[0]
    end = re.search(r"^#{1,%d} " % len(level), text[start:], re.M)
    return text[start:start + end.start()] if end else text[start:]


def parser_commands() -> set[str]:
    """Every runnable command of the CLI: 'init', 'encoder build', ... (a group's name alone is not one)."""
    from ops.cli import build_parser

    found = set()

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    if any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                        walk(child, prefix + name + " ")
                    else:
                        found.add(prefix + name)

    walk(build_parser(), "")
    return found


def named_commands(text: str, groups: set[str]) -> set[str]:
    """The commands `transferline X [Y]` names in `text` (Y when X is a group such as `encoder`)."""
    names = set()
    for first, second in re.findall(r"\btransferline ([a-z][a-z-]*)(?![a-z@-])(?: ([a-z][a-z-]*))?", text):
        names.add(f"{first} {second}" if first in groups and second else first)
    return names


def test_readme_is_short():
    lines = read(README).count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; keep it to {MAX_README_LINES}: move detail to docs/"


def test_readme_has_no_dated_measurements():
    """Dated figures live in docs/benchmarks.md only."""
    dates = re.findall(r"\b20\d\d-\d\d-\d\d\b", read(README))
    assert not dates, f"README.md holds dated figures {dates}: move them to docs/benchmarks.md"


def test_readme_names_every_command_and_only_real_ones():
    commands = parser_commands()
    groups = {c.split(" ")[0] for c in commands if " " in c}
    text = read(README)
    at_a_glance = named_commands(section(text, CLI_SECTION), groups)
    missing = commands - at_a_glance
    assert not missing, f"README {CLI_SECTION!r} lacks a line for: {sorted(missing)}"
    unknown = named_commands(text, groups) - commands
    assert not unknown, f"README names commands the CLI does not have: {sorted(unknown)}"


def test_docs_name_only_real_commands():
    commands = parser_commands()
    groups = {c.split(" ")[0] for c in commands if " " in c}
    for page in sorted(glob.glob(os.path.join(REPO, "docs", "*.md"))):
        # `transferline compile | submit | schedule` names several at once; a group may be named alone.
        unknown = named_commands(read(page), groups) - commands - groups
        assert not unknown, f"{os.path.relpath(page, REPO)} names commands the CLI does not have: {sorted(unknown)}"


def readme_command_lines() -> list[list[str]]:
    """The `transferline ...` commands of the README's code blocks, as argv (comments and continuations joined)."""
    import shlex

    text = re.sub(r"\\\n\s*", " ", read(README))
    lines = []
    for line in re.findall(r"^    (?:\$ )?(transferline .*)$", text, re.M):
        lines.append(shlex.split(line, comments=True)[1:])
    return lines


def test_readme_commands_parse():
    """Each command printed in the README is accepted, flags and all, by the current parser."""
    from ops.cli import build_parser

    lines = readme_command_lines()
    assert len(lines) >= 10
    for argv in lines:
        try:
            build_parser().parse_args(argv)
        except SystemExit as e:
            raise AssertionError(f"README: `transferline {' '.join(argv)}` does not parse (exit {e.code})") from None


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]{2,}|`", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: str) -> set[str]:
    text = re.sub(r"^(    |\t).*$", "", read(path), flags=re.M)  # code blocks hold no headings
    found, seen = set(), {}
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", text, re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def markdown_files() -> list[str]:
    return [README, os.path.join(REPO, "CONTRIBUTING.md")] + sorted(glob.glob(os.path.join(REPO, "docs", "*.md")))


def relative_links(path: str) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", read(path))  # code spans are not links
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", text)
            if not re.match(r"[a-z][a-z0-9+.-]*:", target)]  # http:, https:, mailto:


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: os.path.relpath(p, REPO))
def test_relative_links_resolve(path):
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        target_path = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(target_path):
            broken.append(f"{target} (no such file)")
        elif anchor and target_path.endswith(".md") and anchor not in anchors(target_path):
            broken.append(f"{target} (no such heading in {os.path.relpath(target_path, REPO)})")
    assert not broken, f"{os.path.relpath(path, REPO)}: broken links: {broken}"


def test_configuration_reference_is_current():
    from pipelines import config_docs

    page = os.path.join(REPO, "docs", "configuration.md")
    assert read(page) == config_docs.markdown(), (
        "docs/configuration.md is stale: run `python -m pipelines.config_docs > docs/configuration.md`")


def config_knobs() -> set[str]:
    from pipelines.config import Config

    knobs = set()
    hints = typing.get_type_hints(Config)
    for f in dataclasses.fields(Config):
        if dataclasses.is_dataclass(hints[f.name]):
            knobs.update(f"{f.name}.{g.name}" for g in dataclasses.fields(hints[f.name]))
        else:
            knobs.add(f.name)
    return knobs


def test_readme_knobs_exist():
    from pipelines.config import Config

    sections = {f.name for f in dataclasses.fields(Config)}
    knobs = config_knobs()
    text = read(README)
    # `--set gate.min_accuracy=0.9`, `trainer.auto_fine_tune_min_examples`: a known section, a dot, a name.
    named = {f"{s}.{k}" for s, k in re.findall(r"(?<![\w./-])([a-z_]+)\.([a-z_]+)\b(?![./(-])", text) if s in sections}
    assert named, "the README names no knob: has the pattern gone stale?"
    unknown = named - knobs
    assert not unknown, f"README names knobs pipelines/config.py does not have: {sorted(unknown)}"


def test_helpers_see_what_they_should():
    """The checks above rely on these parsers; a check that finds nothing passes for the wrong reason."""
    assert named_commands("run `transferline encoder build` then transferline run --config x; transferline "
                          "encoder; mail -s transferline ops@example.com", {"encoder"}) == {"encoder build", "run", "encoder"}
    assert slug("The model: head, wide_deep, fine_tune (`trainer.mode`)") == "the-model-head-wide_deep-fine_tune-trainermode"
    assert slug("`make bench` at full size (2026-12-07)") == "make-bench-at-full-size-2026-12-07"
    assert "docs/pipeline.md" in relative_links(README)
    assert {"gate.min_accuracy", "trainer.mode", "pipeline_name"} <= config_knobs()


# ------------------------------------------------------------------ the README's cheap commands, in a copy
def tracked_copy(dest: str) -> None:
    """The working tree as a clone would have it once committed: tracked files and files git does not ignore,
    as they are now (uncommitted edits included), committed in a new repository."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                             check=True, capture_output=True).stdout
    for rel in filter(None, listing.decode().split("\0")):
        src = os.path.join(REPO, rel)
        if not os.path.lexists(src):  # deleted in the working tree, not yet in git
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)) or dest, exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel), follow_symlinks=False)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=dest, check=True)
    subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "copy"], cwd=dest, check=True)


@pytest.mark.slow
def test_readme_commands_leave_the_repository_clean(tmp_path):
    copy = str(tmp_path / "repo")
    os.makedirs(copy)
    tracked_copy(copy)
    env = dict(os.environ, PYTHONPATH=copy, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")

    def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "ops.cli", *args], cwd=copy, env=env, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, f"transferline {' '.join(args)}: exit {done.returncode}\n{done.stderr[-2000:]}"
        return done

    commands = sorted(parser_commands())
    for command in ["--help"] + commands + sorted({c.split(" ")[0] for c in commands if " " in c}):
        cli(*command.split(" "), "--help") if command != "--help" else cli("--help")
    assert "[gate]" in cli("config").stdout
    cli("compile", timeout=600)
    project = str(tmp_path / "topics")
    cli("init", project, "--train", "data/chatterbot-topics/prompts.csv", "--text-column", "prompt",
        "--label-column", "topic")
    assert os.path.exists(os.path.join(project, "transferline.toml"))

    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=copy, check=True,
                            capture_output=True, text=True).stdout
    assert status == "", f"the README's commands changed the repository:\n{status}"
