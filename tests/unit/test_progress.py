"""Progress lines of long loops (trilha.operators.base): what a line says, and how often one is logged."""

from __future__ import annotations

from typing import Any


def test_a_progress_line_says_done_total_bytes_rate_and_eta() -> None:
    from trilha.operators.base import progress_line

    assert progress_line(120, 564, 85_300_000, 5.0) == (
        "120/564 done (21%), 85.3 MB, 24.0 items/s, 17.1 MB/s, ETA 18 s"
    )
    assert progress_line(564, 564, 0, 10.0).endswith("(100%), 0.0 MB, 56.4 items/s, 0.0 MB/s, ETA 0 s")
    # A lazy listing knows no total, so no ETA; nothing done yet gives no rate to estimate from.
    assert progress_line(1_000, None, 0, 2.0) == "1000/? done, 0.0 MB, 500.0 items/s, 0.0 MB/s, ETA ?"
    assert progress_line(0, 10, 0, 3.0).endswith("ETA ?")


def test_progress_logs_at_most_one_line_per_interval_and_one_at_the_end() -> None:
    from trilha.operators.base import Progress

    class Log:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def info(self, fmt: str, *args: Any) -> None:
            self.lines.append(fmt % args)

    log = Log()
    progress = Progress(log, "staging", total=1_000, every=3600.0)
    for _ in range(1_000):
        progress.update(1, 700_000)
    assert log.lines == []  # not one line per item
    progress.finish()
    assert len(log.lines) == 1
    assert log.lines[0].startswith("staging: 1000/1000 done (100%), 700.0 MB, ")
    assert log.lines[0].endswith("ETA 0 s")
    eager = Progress(log, "promote", total=4, every=0.0)
    eager.update(2)
    assert log.lines[-1].startswith("promote: 2/4 done (50%)")
