"""A rich progress bar with ETA for long data steps; silent for small jobs and when stderr is not a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

MIN_TOTAL = 1000  # below this a step takes seconds; a bar would only flicker


@contextlib.contextmanager
def progress(description: str, total: int, min_total: int = MIN_TOTAL) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; shows a bar on stderr (counts only, never record text)."""
    console = Console(stderr=True)
    if total < min_total or not console.is_terminal:
        yield lambda n: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
