"""Checks the classify widget in a real browser: JupyterLab on 127.0.0.1, headless Chromium, 03_classify.ipynb.

Trains the tutorial's `dogs` classifier in a temporary home, opens a copy of 03_classify.ipynb whose
parameters point there, runs all cells, drags the threshold slider, checks that the results table
changes, and saves a screenshot (docs/classify_widget.png by default). Exit status 0 means it passed.

    .venv/bin/python tools/browser_check.py [--screenshot docs/classify_widget.png] [--chromium /usr/bin/chromium]

Needs Debian's chromium (`apt-get install -y chromium`) and the `playwright` Python package (its
driver only: no browser is downloaded).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "data" / "tutorial"
NOTEBOOK = ROOT / "notebooks" / "03_classify.ipynb"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SERVER_START_SECONDS = 90
RUN_SECONDS = int(os.environ.get("BROWSER_CHECK_RUN_SECONDS", 300))  # running every cell of the notebook (backbone load, classify, plots)
NO_NEWS = '{"fetchNews": "false", "checkForUpdates": false}'  # no news toast over the widget, no network
VIEWPORT = {"width": 1500, "height": 1100}


def chromium_binary(given: str | None) -> str:
    """The real Chromium executable (Debian's /usr/bin/chromium is a shell wrapper around it)."""
    for candidate in [given, "/usr/lib/chromium/chromium", "/usr/bin/chromium"]:
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit("chromium not found: apt-get install -y chromium")


def train_dogs(work: Path) -> dict:
    """A home with the tutorial's `dogs` classifier (Step 2 and 3) trained, tracking off; the notebook's parameters."""
    from workbench import Workbench
    from workbench.cli import zip_folder

    home, zips = work / "home", work / "zips"
    zips.mkdir(parents=True)
    zip_of = {name: zip_folder(TUTORIAL / name, zips / f"{name}.zip")
              for name in ["beagle", "husky", "goldenretriever", "dalmatian", "cats", "more-cats"]}
    wb = Workbench(home, tracking_uri=False)
    cid = wb.create_classifier("dogs", {c: zip_of[c] for c in ["beagle", "husky", "goldenretriever"]}, negative_examples=zip_of["cats"])["classifier_id"]
    wb.wait(cid, timeout=600)
    wb.update_classifier(cid, positive_examples={"dalmatian": zip_of["dalmatian"]}, negative_examples=zip_of["more-cats"])
    assert wb.wait(cid, timeout=600)["status"] == "ready"
    return {"home": str(home), "tracking_uri": "none", "data_dir": str(TUTORIAL)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(root: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab from this venv (so its kernel is the venv's python3), serving `root` on 127.0.0.1."""
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:  # containers often run as root; JupyterLab refuses that unless told
        command.append("--allow-root")
    settings = root / ".lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(NO_NEWS)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / ".jupyter-config"), JUPYTERLAB_SETTINGS_DIR=str(settings))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(root / "lab.log", "wb"), env=env)
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
            return process
        except OSError:
            time.sleep(0.5)
    process.terminate()
    sys.exit(f"JupyterLab did not start; see {root / 'lab.log'}")


def results_count(page: Page) -> str:
    """The line above the results table: 'N classes at threshold T'."""
    return page.locator(".workbench-classify p", has_text="classes at threshold").first.inner_text()


def drag_slider(page: Page, fraction: float) -> None:
    """Drags the classify widget's threshold handle to `fraction` of its track, as a person would."""
    page.locator(".workbench-classify").first.scroll_into_view_if_needed()
    track = page.locator(".workbench-classify .widget-slider .noUi-target").first
    handle = page.locator(".workbench-classify .widget-slider .noUi-handle").first
    box, grip = track.bounding_box(), handle.bounding_box()
    page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * fraction, grip["y"] + grip["height"] / 2, steps=10)
    page.mouse.up()


def check(page: Page, url: str, screenshot: Path) -> None:
    page.goto(url)
    page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
    select = page.locator(".jp-Dialog").get_by_role("button", name="Select")
    try:  # JupyterLab may ask which kernel to start: the notebook's own (this venv's python3) is preselected
        select.wait_for(timeout=10_000)
        select.click()
    except PlaywrightTimeout:
        pass
    page.get_by_text("| Idle").first.wait_for(timeout=60_000)
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()
    page.wait_for_function(  # every code cell has run: its prompt shows a number, none shows [*] or [ ]
        "() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];"
        " return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }",
        timeout=RUN_SECONDS * 1000,
    )
    page.locator(".workbench-classify .workbench-results").first.wait_for(timeout=30_000)
    before = results_count(page)
    print("before:", before)
    drag_slider(page, 0.08)
    page.wait_for_function(  # the kernel re-filtered at the dropped position (not an intermediate one)
        "() => { const p = [...document.querySelectorAll('.workbench-classify p')]"
        ".find(e => e.innerText.includes('classes at threshold'));"
        " const m = p && p.innerText.match(/threshold ([0-9.]+)/); return m && parseFloat(m[1]) < 0.2; }",
        timeout=30_000,
    )
    page.wait_for_timeout(1000)  # let the last slider messages settle before reading
    after = results_count(page)
    print("after: ", after)
    low = float(re.search(r"threshold ([0-9.]+)", after).group(1))
    count_before, count_after = (int(re.match(r"(\d+)", text).group(1)) for text in (before, after))
    assert low < 0.5 and count_after > count_before, (before, after)
    widget = page.locator(".workbench-classify").first
    widget.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    widget.screenshot(path=str(screenshot))
    print("screenshot:", screenshot)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenshot", type=Path, default=ROOT / "docs" / "classify_widget.png")
    parser.add_argument("--chromium", default=None, help="Chromium executable (default: Debian's)")
    parser.add_argument("--home", type=Path, default=None,
                        help="use this workbench home (with a ready `dogs` classifier) instead of training one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="workbench-browser-") as tmp:
        work = Path(tmp)
        parameters = train_dogs(work) if args.home is None else {
            "home": str(args.home.resolve()), "tracking_uri": "none", "data_dir": str(TUTORIAL)}
        notebook = parameterize_notebook(load_notebook_node(str(NOTEBOOK)), parameters)
        nbformat.write(notebook, work / NOTEBOOK.name)
        port, token = free_port(), secrets.token_hex(16)
        lab = start_lab(work, port, token)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_binary(args.chromium), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                try:
                    check(page, f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}", args.screenshot)
                except Exception:
                    page.screenshot(path=str(args.screenshot.with_suffix(".failed.png")), full_page=True)
                    print("failed; page saved as", args.screenshot.with_suffix(".failed.png"), file=sys.stderr)
                    raise
                finally:
                    browser.close()
        finally:
            lab.terminate()
            lab.wait(timeout=30)
    print("browser check passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
