"""Museum metadata adapters, by the SOURCE name `marketplace ingest SOURCE FILE` takes."""

from __future__ import annotations

from .aic import AicAdapter
from .base import Adapter
from .cleveland import ClevelandAdapter
from .cmoa import CmoaAdapter
from .met import MetAdapter
from .smithsonian import SmithsonianAdapter
from .tate import TateAdapter

ADAPTERS: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        AicAdapter(),
        ClevelandAdapter(),
        CmoaAdapter(),
        MetAdapter(),
        SmithsonianAdapter(),
        TateAdapter(),
    )
}


def get_adapter(name: str) -> Adapter:
    """The adapter for source `name`; raises KeyError naming the known sources."""
    try:
        return ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise KeyError(f"unknown source {name!r}; known sources: {known}") from None
