"""The error type and value checks shared by the three configuration files."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ConfigError(Exception):
    """A configuration problem, named by file, key and what is wrong (exit status 2)."""

    def __init__(self, file: Path | str | None, key: str, message: str) -> None:
        self.file, self.key, self.message = file, key, message
        where = f"{file}: " if file else ""
        super().__init__(f"{where}{key}: {message}" if key else f"{where}{message}")


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning I/O and syntax errors into ConfigError."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(path, "", "file not found") from None
    except OSError as e:
        raise ConfigError(path, "", f"cannot read: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(path, "", f"not valid TOML: {e}") from None


def parse_duration(value: object) -> float:
    """'30s', '15m', '2h', '1d' -> seconds. Raises ValueError."""
    m = _DURATION.match(value) if isinstance(value, str) else None
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"expected a duration such as '30s', '15m', '2h' or '1d', got {value!r}")
    return float(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def check_keys(file: Path, where: str, table: dict[str, Any], allowed: set[str]) -> None:
    """Reject keys that nobody reads: a typo should not be silently ignored."""
    for key in table:
        if key not in allowed:
            raise ConfigError(file, f"{where}{key}", f"unknown key (expected one of: {', '.join(sorted(allowed))})")


def expect(file: Path, key: str, value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    """Check a value's type; bool is not accepted where a number is asked for."""
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(file, key, f"expected {what}, got {value!r}")
    return value
