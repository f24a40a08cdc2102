"""Progress bars for long stages: shown on an interactive terminal, silent elsewhere (Prefect workers, CI, logs)."""

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")


def progress_enabled() -> bool:
    """``SHOPFLOW_PROGRESS`` = on | off | auto (default: on when stderr is a terminal)."""
    choice = os.environ.get("SHOPFLOW_PROGRESS", "auto").lower()
    return choice == "on" or (choice == "auto" and sys.stderr.isatty())


def track(items: Iterable[Item], description: str, total: int | None = None) -> Iterator[Item]:
    """Yield ``items``, drawing a rich progress bar on stderr when progress is enabled."""
    if not progress_enabled():
        yield from items
        return
    from rich.console import Console
    from rich.progress import Progress

    forced = os.environ.get("SHOPFLOW_PROGRESS", "auto").lower() == "on"  # draw even into a pipe or a log file
    with Progress(console=Console(stderr=True, force_terminal=forced or None), transient=True) as progress:
        task = progress.add_task(description, total=total if total is not None else _length(items))
        for item in items:
            yield item
            progress.advance(task)


def _length(items: Iterable) -> int | None:
    return len(items) if hasattr(items, "__len__") else None
