"""Progress of long loops, one rule for every command: a bar where a bar can redraw, plain lines elsewhere.

    from accel_slowfast.progress import Progress
    progress = Progress(len(videos), "probe", unit="video")
    for video in videos:
        ...
        progress.update(1)
    progress.close()

A tqdm bar on a terminal and in a notebook (a widget); where the output is a file (``nohup``,
SLURM's log files, CI) a bar's redraws would be ``\\r`` runs glued to the log lines, so there it
is a plain line every ``LINE_INTERVAL`` seconds and one at the end. The recipe key
``progress_bar: false`` turns bars off everywhere (plain lines instead); ``lines=False`` leaves
out the plain lines where the caller logs its own (training logs every ``log_interval``).
"""

import sys
import time

from tqdm.auto import tqdm

LINE_INTERVAL = 30.0  # seconds between progress lines when there is no bar
BARS = {"enabled": True}  # the recipe's progress_bar, set once per command (engine/accelerator.build_accelerator)


def bars_enabled(enabled: bool) -> None:
    """Turn bars on or off for this process (the recipe key ``progress_bar``)."""
    BARS["enabled"] = enabled


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel running a notebook's cells (not merely one that
    imported ipykernel, as a test runner that starts kernels does)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def can_redraw(stream) -> bool:
    """Whether a bar can redraw in place on ``stream``: a terminal, or a Jupyter kernel (a widget)."""
    return BARS["enabled"] and (stream.isatty() or in_notebook())


class Progress:
    """A bar, or plain lines (``<desc>: done/total units, rate, elapsed, ETA``), or nothing when disabled.

    Args:
        total: the units to do.
        desc: the bar's and each line's name.
        unit: what is counted.
        stream: where it goes (stderr).
        disable: nothing at all (not the main process).
        lines: the plain lines where there is no bar.
    """

    def __init__(self, total: int, desc: str, unit: str = "it", stream=None, disable: bool = False,
                 lines: bool = True):
        self.total, self.desc, self.unit, self.done = total, desc, unit, 0
        self.stream = stream or sys.stderr
        self.start = self.last = time.monotonic()
        self.bar = None
        self.lines = lines and not disable
        if not disable and can_redraw(self.stream):
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True, leave=False)
            self.lines = False

    def update(self, n: int = 1, **postfix) -> None:
        """``n`` more done; ``postfix``: values shown after the bar (a line: after the counts)."""
        self.done += n
        if self.bar is not None:
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(n)
        elif self.lines and (time.monotonic() - self.last >= LINE_INTERVAL or self.done == self.total):
            self.last = time.monotonic()
            elapsed = self.last - self.start
            eta = elapsed / self.done * (self.total - self.done)
            extra = "".join(f", {value} {key}" for key, value in postfix.items())
            print(f"{self.desc}: {self.done}/{self.total} {self.unit}s{extra}, {self.done / elapsed:.2f} "
                  f"{self.unit}s/s, elapsed {tqdm.format_interval(elapsed)}, ETA {tqdm.format_interval(eta)}",
                  file=self.stream, flush=True)

    def set_postfix(self, **postfix) -> None:
        """Values shown after the bar from its next redraw (none without a bar)."""
        if self.bar is not None:
            self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
