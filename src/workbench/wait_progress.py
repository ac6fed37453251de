"""The progress bar of `Workbench.wait(progress=True)`: training events and polled status as one tqdm bar."""

from __future__ import annotations

from .events import ClassifierEvent


class WaitBar:
    """A listener drawing one classifier's training: its stage as the description, images embedded as the count.

    Events come from trainings in this process; `show_status` covers trainings run by another
    process, which only the polled status reveals. Use it as a context manager; it closes the bar.
    """

    def __init__(self, classifier_id: str) -> None:
        self.classifier_id = classifier_id
        self.heard = False  # whether a training event of this process arrived (it says more than the status)
        from tqdm.auto import tqdm  # here, so scoring a logged model (which imports this module) needs no tqdm

        self.bar = tqdm(desc=f"{classifier_id}: waiting", unit="img", total=None, leave=True)

    def _describe(self, what: str) -> None:
        text = f"{self.classifier_id}: {what}"
        if self.bar.desc != text:
            self.bar.set_description(text)

    def __call__(self, event: ClassifierEvent) -> None:
        if event.classifier_id != self.classifier_id:
            return
        self.heard = True
        if event.stage == "started":  # a (follow-up) training: count its images afresh, from now
            self.bar.reset(total=None)
        if event.stage == "embedding":
            self.bar.total = event.total
            self.bar.update(event.done - self.bar.n)
        self._describe(event.stage)

    def show_status(self, status: str) -> None:
        """Shows the stored status (training, ready, failed...) unless this process's events say more."""
        if status in ("ready", "failed") or not self.heard:
            self._describe(status)

    def __enter__(self) -> "WaitBar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.bar.close()
