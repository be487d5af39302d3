"""README.nl.md, for municipal and institutional readers, keeps the commands of README.md: every command block of the
English README outside its developers' sections is in the Dutch one, in the same order and letter for letter (the
comments after `#` aside), and the Dutch one has no commands of its own."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# README.md's sections for developers of the service itself; the Dutch README points to the English one for them.
DEVELOPERS_ONLY = {"Tests"}
FENCE = re.compile(r"^## (?P<section>[^\n]+)$|^```(?:sh|bash)\n(?P<block>.*?)^```$", re.MULTILINE | re.DOTALL)


def command_blocks(text: str, skip: set[str] = frozenset()) -> list[list[str]]:  # type: ignore[assignment]
    """The ```sh and ```bash blocks of a Markdown text, as their command lines without comments, outside the
    sections named in `skip`."""
    blocks, section = [], None
    for match in FENCE.finditer(text):
        if match["section"] is not None:
            section = match["section"].strip()
        elif section not in skip:
            lines = [re.sub(r"(^|\s)#.*$", "", line).rstrip() for line in match["block"].splitlines()]
            blocks.append([line for line in lines if line])
    return blocks


def test_the_dutch_readme_has_the_english_readmes_commands():
    english = command_blocks((ROOT / "README.md").read_text(encoding="utf-8"), DEVELOPERS_ONLY)
    dutch = command_blocks((ROOT / "README.nl.md").read_text(encoding="utf-8"))
    assert english, "README.md has no command blocks: the pattern no longer reads it"
    assert dutch == english


def test_comments_do_not_count_but_commands_do():
    text = "## Quick start\n```sh\nmake run   # starts it\n# a note\n```\n## Tests\n```bash\nmake test\n```\n"
    assert command_blocks(text) == [["make run"], ["make test"]]
    assert command_blocks(text, {"Tests"}) == [["make run"]]
    assert command_blocks("```sh\ncurl -s 'http://x/?a=1#frag'\n```\n") == [["curl -s 'http://x/?a=1#frag'"]]
