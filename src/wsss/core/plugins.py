"""Out-of-tree units: every module named in WSSS_PLUGINS (comma-separated; blanks ignored) is
imported once, after the built-in methods and data sources, and registers itself the way they do
(`register_method`, `register_source`; tests/plugins/)."""

from __future__ import annotations

import importlib
import os


def load_plugins() -> None:
    for name in filter(None, (s.strip() for s in os.environ.get("WSSS_PLUGINS", "").split(","))):
        importlib.import_module(name)
