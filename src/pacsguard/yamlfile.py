"""YAML site files with line numbers, so every error can name file, line and key.

``load`` parses safely (no tags, no Python objects), refuses duplicate keys (PyYAML would
silently keep the last one) and returns the data with a ``Locator``. ``validate`` runs a
pydantic model over the data and turns its errors into located ``Problem``s.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from pacsguard.errors import ConfigError, Problem

__all__ = ["Locator", "load", "problems_from_validation", "validate"]

# libyaml's parser when PyYAML was built with it (much faster on large policy sets);
# both are the safe loaders: no tags, no Python objects.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Key = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


class Locator:
    """Maps a key path such as ``("zones", 2, "parent")`` to its 1-based line."""

    def __init__(self, file: Path | str, lines: dict[Key, int]) -> None:
        self.file = file
        self._lines = lines

    def line(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return self._lines.get((), None)

    def problem(self, path: Sequence[str | int], message: str, expected: str | None = None) -> Problem:
        return Problem(self.file, message, self.line(path), dotted(path), expected)


def dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load(path: Path, text: str | None = None) -> tuple[Any, Locator]:
    """Parse a YAML file; raises ``ConfigError`` with the line of any syntax error."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(Problem(path, f"cannot read file: {exc}")) from exc
    # One parse: compose the node tree (kept for line numbers), then build the data from it.
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(Problem(path, f"not valid YAML: {reason}", line)) from exc
    finally:
        loader.dispose()
    lines: dict[Key, int] = {}
    problems: list[Problem] = []
    if node is not None:
        _walk(node, (), lines, problems, path)
    if problems:
        raise ConfigError(problems)
    return data, Locator(path, lines)


def _walk(node: yaml.Node, path: Key, lines: dict[Key, int], problems: list[Problem], file: Path) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                problems.append(
                    Problem(file, f"duplicate key {key!r}", key_node.start_mark.line + 1, dotted((*path, key)))
                )
            seen.add(key)
            _walk(value_node, (*path, key), lines, problems, file)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, problems, file)


def problems_from_validation(error: ValidationError, locator: Locator, base: Key = ()) -> list[Problem]:
    """Turn pydantic's errors into located problems."""
    problems = []
    for item in error.errors():
        loc = (*base, *item["loc"])
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(locator.problem(loc, message))
    return problems


def validate(model: type[M], data: Any, locator: Locator, base: Key = ()) -> M:
    """Validate ``data`` against ``model``; raises ``ConfigError`` naming every bad key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, locator, base)) from exc
