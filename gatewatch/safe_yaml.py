"""The one YAML loader for every file gatewatch reads: configuration, scenarios, gates, rules.

``yaml.safe_load`` is safe against code execution but not against files that are wrong in quieter
ways, and each of these has been seen to matter:

- **duplicate keys**: ``paper: false`` then ``paper: true`` silently keeps the last one, so a
  reviewer reading the first line is misled about whether orders may go. Here it is an error
  naming the key and both lines (merge keys ``<<`` may still be overridden, as YAML intends);
- **deep nesting** makes the composer recurse until ``RecursionError``: refused past
  :data:`MAX_DEPTH` levels;
- **alias bombs** ("billion laughs": anchors referring to anchors) expand to gigabytes once a
  consumer walks them (a duration field stringifies them): the document's size with every alias
  expanded is counted before anything is built, and refused past :data:`MAX_NODES`; a recursive
  alias is refused too;
- **non-UTF-8 bytes** raise ``UnicodeDecodeError`` from ``read_text``: reported with the offset.

Every problem is a :class:`YamlFileError` whose message names the file and the problem (with its
line where there is one); callers turn it into their own error (exit status 2 for files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_BYTES = 4 * 1024 * 1024
"""A gatewatch file is a few kilobytes; anything this large is not one."""
MAX_DEPTH = 64
"""Nesting levels; gatewatch's own files use fewer than 10."""
MAX_NODES = 200_000
"""Scalars, lists and mappings after expanding every alias; the largest shipped file has ~2,000."""
MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlFileError(ValueError):
    """A YAML file that cannot be read safely; the message names the file and the problem."""


def _line(node: Node) -> int:
    return node.start_mark.line + 1


class _Loader(yaml.SafeLoader):
    """SafeLoader with a depth limit, an expanded-size limit and duplicate keys as errors."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlFileError(f"nested more than {MAX_DEPTH} levels deep (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_size(node)
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: SafeLoader reports it below
            if first is not None:
                raise YamlFileError(
                    f"duplicate key {key!r} at line {_line(key_node)} (first at line {first}): "
                    "YAML would silently keep only the last one"
                )
            seen[key] = _line(key_node)
        return super().construct_mapping(node, deep=deep)


def _check_size(root: Node) -> None:
    """Count nodes with every alias expanded (memoised: linear in the file, however big the bomb)."""
    sizes: dict[int, int] = {}
    visiting: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in visiting:
            raise YamlFileError(f"recursive alias (an anchor used inside itself, line {_line(node)})")
        visiting.add(key)
        total = 1
        if isinstance(node, SequenceNode):
            children: list[Node] = list(node.value)
        elif isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > MAX_NODES:
                raise YamlFileError(
                    f"expands to more than {MAX_NODES:,} values through aliases (line {_line(node)}): "
                    "an alias bomb, or far larger than any gatewatch file"
                )
        visiting.discard(key)
        sizes[key] = total
        return total

    size(root)


def loads(text: str, source: str | Path = "<text>") -> Any:
    """Parse ``text``; :class:`YamlFileError` naming ``source`` on any problem."""
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except YamlFileError as exc:
        raise YamlFileError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{source}: not valid YAML: {exc}") from None
    except RecursionError:
        raise YamlFileError(f"{source}: nested too deeply to read") from None
    finally:
        loader.dispose()


def load_file(path: str | Path) -> Any:
    """Read ``path`` as UTF-8 YAML; :class:`YamlFileError` naming the file on any problem."""
    source = Path(path)
    try:
        with source.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise YamlFileError(f"{source}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise YamlFileError(f"{source}: larger than {MAX_BYTES // 2**20} MiB, not a gatewatch file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise YamlFileError(
            f"{source}: not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line}); "
            "save the file as UTF-8"
        ) from None
    return loads(text, source)
