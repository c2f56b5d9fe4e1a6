"""The one error type for bad configuration: it always names the file and the key."""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""

    def __init__(self, path: Path | str, key: str, problem: str) -> None:
        self.path = str(path)
        self.key = key
        self.problem = problem
        super().__init__(f"{self.path}: {key}: {problem}")
