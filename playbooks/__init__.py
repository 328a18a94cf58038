"""Mitigation playbooks, one module each; every Playbook subclass defined in a module here is registered."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from bot.core.config import IncidentConfig
from bot.core.playbook import Playbook, PlaybookRegistry


def discover(config: IncidentConfig) -> PlaybookRegistry:
    """Every playbook in this package: a new playbook is one new module, nothing else changes."""
    registry = PlaybookRegistry(config.command)
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Playbook) and cls.__module__ == module.__name__ and not inspect.isabstract(cls):
                registry.add(cls(config))
    return registry
