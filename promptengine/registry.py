"""Name -> class registries keyed by class name, with a "did you mean" hint on a miss."""

from __future__ import annotations

import difflib
from typing import Callable, Dict, List, TypeVar

from .errors import UserError

T = TypeVar("T")


def closest(name: str, choices: List[str]) -> str:
    """The closest valid choice (case-insensitive first, then fuzzy), or '' if nothing is close."""
    lowered = {c.lower(): c for c in choices}
    if name.lower() in lowered:
        return lowered[name.lower()]
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.4)
    if not match:
        match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.4)
        match = [lowered[m] for m in match]
    return match[0] if match else ""


class Registry:
    """Maps a class name to the class; ``register()`` is used as a decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, type] = {}

    def register(self, force: bool = False) -> Callable[[T], T]:
        def deco(cls: T) -> T:
            name = cls.__name__  # type: ignore[attr-defined]
            if name in self._items and not force and self._items[name] is not cls:
                raise KeyError(f"{self.kind} '{name}' is already registered")
            self._items[name] = cls  # type: ignore[assignment]
            return cls

        return deco

    def get(self, name: str) -> type:
        if name not in self._items:
            hint = closest(name, self.registered_names())
            hint_text = f"; did you mean '{hint}'?" if hint else ""
            raise UserError(
                f"unknown {self.kind.lower()} '{name}'{hint_text} "
                f"(registered: {', '.join(sorted(self.registered_names()))})"
            )
        return self._items[name]

    def registered_names(self) -> List[str]:
        return list(self._items)

    def with_role(self, role: str) -> str:
        """The name of the one registered class that declares ``role`` in its own ``roles`` (e.g. "zero_shot"), so
        code outside a method's file asks for what it needs instead of naming the method."""
        names = [name for name, cls in self._items.items() if role in vars(cls).get("roles", ())]
        if len(names) != 1:
            found = f": {', '.join(names)}" if names else ""
            raise UserError(f"{len(names)} registered {self.kind.lower()}s declare the role '{role}'{found}; exactly "
                            "one must (set `roles` on its class)")
        return names[0]

    def __contains__(self, name: str) -> bool:
        return name in self._items


TRAINER_REGISTRY = Registry("TRAINER")
DATASET_REGISTRY = Registry("DATASET")
