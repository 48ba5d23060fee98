"""Name -> builder registries: how operators, nets and pruning scores become choosable by name.

One `Registry` per kind. A new entry is one file whose builder carries `@REGISTRY.register("name")`;
the package that owns the kind imports its files, so importing the package fills the registry. The CLI's
choices, their help text and the tests' parametrisation read `names()`, so an entry registered later
(a plug-in, or a test) appears everywhere by itself.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import LipError

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered mapping of names to entries (classes or functions) of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # e.g. "task", "net", "score": used in error messages
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: file the entry under `name`; a second entry of the same name is a bug."""
        def add(entry: T) -> T:
            if name in self._entries and self._entries[name] is not entry:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = entry
            return entry
        return add

    def unregister(self, name: str) -> None:
        """Remove an entry (tests that register a toy entry clean up with this)."""
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The entry of `name`, or a one-line usage error that lists the choices."""
        try:
            return self._entries[name]
        except KeyError:
            raise LipError(f"unknown {self.kind} {name!r}: use one of {', '.join(self._entries)}") from None

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)
