"""Progress bars on stderr (rich), shared by the long-running commands."""

from __future__ import annotations

from collections.abc import Callable


def progress_bar(
    label: str, total: int | None, *, transfer: bool, show: bool
) -> tuple[Callable[..., None], Callable[[], None]]:
    """``(update(completed), stop())``. ``transfer``: counts are bytes (shown with a speed in
    B/s); otherwise items with a rate."""
    if not show:
        return (lambda _done, _note="": None), (lambda: None)
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    if transfer:
        columns = [
            TextColumn(label),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        ]
    else:
        columns = [
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn() if total else TextColumn("{task.completed:,}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
        ]
    progress = Progress(*columns, console=Console(stderr=True), transient=True)
    task = progress.add_task(label, total=total, rate="")
    progress.start()
    started = [None]

    def update(done: int, note: str = "") -> None:
        """``note``: extra text after the rate (e.g. tokens/s)."""
        import time

        now = time.perf_counter()
        if started[0] is None:
            started[0] = now
        elapsed = now - started[0]
        rate = f"{done / elapsed:,.1f}/s" if elapsed > 0 and not transfer else ""
        progress.update(task, completed=done, rate=f"{rate} {note}".strip())

    return update, progress.stop
