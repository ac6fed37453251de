"""How long the threshold widget takes to follow its slider: seconds from a slider change to numbers and plots drawn.

    PYTHONPATH=src .venv/bin/python -m bench.slider [--home DIR] [--changes 20]

Trains the tutorial's `dogs` classifier (beagle, husky, goldenretriever, then dalmatian; cats and
more-cats as negatives) in a temporary home, or reuses one in `--home`, then moves the slider of
`widgets.ThresholdPlots` the way a browser does: `slider.set_state({"value": v})`, which is what
ipywidgets runs when the front end sends a new value, so the widget's own observer fires. Each
change waits until the widget has drawn that value (`wait()`, then `drawn_threshold == v`); the
time covers the observer, the redraw throttle and the redraw (per-class numbers, every plot).
Changes are measured 0.5 s apart (each one drawn on its own, as a click on the track) and back to
back (each right after the last was drawn: the throttle's interval then counts too).
Also prints one direct `redraw()` call's cost and a dragged slider (40 values in a row) until its
last value is drawn.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import ipywidgets

from workbench import Workbench, widgets

TUTORIAL = Path(__file__).resolve().parents[1] / "data" / "tutorial"
CREATE = {c: TUTORIAL / c for c in ("beagle", "husky", "goldenretriever")}
PAUSE_S = 0.5  # between changes "apart": longer than the widget's redraw interval, so each is drawn on its own


def trained(home: Path) -> tuple[Workbench, str]:
    """The tutorial classifier after its update (4 classes, two negative sets), trained once per home."""
    wb = Workbench(home, tracking_uri=False)
    found = [c for c in wb.list_classifiers()["classifiers"] if c["name"] == "dogs" and c["status"] == "ready"]
    if found:
        return wb, found[0]["classifier_id"]
    cid = wb.create_classifier("dogs", CREATE, negative_examples=TUTORIAL / "cats")["classifier_id"]
    wb.wait(cid, timeout=900)
    wb.update_classifier(
        cid, positive_examples={"dalmatian": TUTORIAL / "dalmatian"}, negative_examples=TUTORIAL / "more-cats"
    )
    assert wb.wait(cid, timeout=900)["status"] == "ready"
    return wb, cid


def follow(view: widgets.ThresholdPlots, slider: ipywidgets.FloatSlider, value: float) -> float:
    """Seconds from the browser's new value to the widget showing that value."""
    started = time.perf_counter()
    slider.set_state({"value": value})  # what the comm handler does with the front end's update
    assert view.wait(timeout=120)
    assert view.drawn_threshold == value, (view.drawn_threshold, value)
    return time.perf_counter() - started


def measure(wb: Workbench, cid: str, changes: int) -> None:
    oof = wb.out_of_fold(cid)
    print(f"{cid} version {oof.version}: {len(oof.labels)} images, {len(oof.classes)} classes")
    slider = ipywidgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.01)
    started = time.perf_counter()
    view = widgets.ThresholdPlots(oof, slider)
    print(f"widget built (first draw included): {time.perf_counter() - started:.3f} s")
    values = [round(0.05 + 0.9 * ((i * 7) % changes) / changes, 2) for i in range(changes)]
    follow(view, slider, 0.42)  # one change to warm up (first use of each code path)
    for pause, what in ((PAUSE_S, f"{PAUSE_S} s apart (a click on the track)"), (0.0, "back to back")):
        seconds = []
        for v in values:
            time.sleep(pause)
            seconds.append(follow(view, slider, v))
        print(
            f"slider change -> numbers and plots drawn, {changes} changes {what}: "
            f"median {statistics.median(seconds):.3f} s, max {max(seconds):.3f} s, min {min(seconds):.3f} s"
        )
    redraws = []
    for v in values[:5]:
        slider.value = v
        view.wait(timeout=120)
        started = time.perf_counter()
        view.redraw()
        redraws.append(time.perf_counter() - started)
    print(f"one redraw() call: median {statistics.median(redraws):.3f} s, max {max(redraws):.3f} s")
    drag = [round(0.30 + 0.01 * i, 2) for i in range(40)]
    started = time.perf_counter()
    for v in drag:
        slider.set_state({"value": v})
    released = time.perf_counter()
    assert view.wait(timeout=120) and view.drawn_threshold == drag[-1]
    done = time.perf_counter()
    print(f"a drag of 40 values in {released - started:.3f} s: last value drawn {done - released:.3f} s after release")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="a workbench home to train in once and reuse")
    parser.add_argument("--changes", type=int, default=20)
    args = parser.parse_args()
    if args.home is not None:
        measure(*trained(args.home), args.changes)
        return
    with tempfile.TemporaryDirectory() as tmp:
        measure(*trained(Path(tmp) / "home"), args.changes)


if __name__ == "__main__":
    main()
