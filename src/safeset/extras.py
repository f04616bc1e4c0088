"""Optional pieces (the extras in pyproject): imported on first use, and when missing, one line
saying which package to install and which extra brings it."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType

from safeset.errors import SafesetError


class MissingExtra(SafesetError, ImportError):
    """An optional package is missing; the message says what to install."""


def require_extra(
    module: str, *, extra: str, purpose: str, providers: Mapping[str, str] = {}
) -> ModuleType:
    """Import ``module`` or raise MissingExtra naming its distribution and the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        provider = providers.get(module, module)
        raise MissingExtra(
            f"{purpose} needs {provider} ({module} could not be imported: {exc}); "
            f"install the {extra} extra: pip install 'safeset[{extra}]'"
        ) from exc
