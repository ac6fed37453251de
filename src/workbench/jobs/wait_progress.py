"""The progress bar of `Workbench.wait(progress=True)`: training events and polled status as one tqdm bar."""

from __future__ import annotations

from typing import Any

from ..core.events import ClassifierEvent


class WaitBar:
    """A listener drawing one classifier's training: its stage as the description, images embedded as the count.

    Events come from trainings in this process; `show_status` covers trainings run by another
    process, which only the polled status reveals. The bar is drawn once there is something to
    count (the first images to embed): until then a stage or status change draws nothing, so no
    "0img" frames pile up before it. A wait with nothing to count shows one line, the outcome, at
    the end. Use it as a context manager; it closes the bar.
    """

    def __init__(self, classifier_id: str) -> None:
        self.classifier_id = classifier_id
        self.heard = False  # whether a training event of this process arrived (it says more than the status)
        self.what = "waiting"  # the stage or status shown
        self.bar: Any = None  # the tqdm bar, made at the first count
        self._afresh = False  # a (follow-up) training started: its count starts from 0 again

    def _tqdm(self, **kwargs: Any) -> Any:
        from tqdm.auto import tqdm  # here, so scoring a logged model (which imports this module) needs no tqdm

        return tqdm(desc=f"{self.classifier_id}: {self.what}", leave=True, **kwargs)

    def _describe(self, what: str) -> None:
        if what == self.what:
            return
        self.what = what
        if self.bar is not None:
            self.bar.set_description(f"{self.classifier_id}: {what}")

    def _count(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = self._tqdm(unit="img", total=total)
        elif self._afresh:
            self.bar.reset(total=total)
        elif self.bar.total != total:
            self.bar.total = total
        self._afresh = False
        self.bar.update(done - self.bar.n)

    def __call__(self, event: ClassifierEvent) -> None:
        if event.classifier_id != self.classifier_id:
            return
        self.heard = True
        if event.stage == "started":  # a (follow-up) training: count its images afresh, from its first
            self._afresh = True
        self._describe(event.stage)
        if event.stage == "embedding" and event.total:
            self._count(event.done, event.total)

    def show_status(self, status: str) -> None:
        """Shows the stored status (training, ready, failed...) unless this process's events say more."""
        if status in ("ready", "failed") or not self.heard:
            self._describe(status)

    def __enter__(self) -> WaitBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is None:  # nothing was counted (another process trained, or every embedding was cached)
            self.bar = self._tqdm(bar_format="{desc}")
        self.bar.close()
