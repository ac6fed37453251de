"""Checks the notebooks and MLflow UI in a real browser: JupyterLab, `mlflow server` on 127.0.0.1, headless Chromium.

In a temporary home tracked in a temporary MLflow store, runs every cell of notebooks 01-04 in
JupyterLab (01 creates `dogs`, 02 retrains it), drags 03's threshold slider and checks that the
results re-filter, then uploads another tutorial image through the classify widget's image button
and checks that the picture and the answer change. Then the MLflow UI, in a fresh browser profile
first, as a person meets it: the home page, a click on the experiment (MLflow 3.17 shows the GenAI
overview there: reported, not failed), the sidebar switch to "Model training", the click again,
which must show the runs table, and its "Key metrics" view with metric columns; then the links the
tracker prints: the runs table with the key metrics, a registered version linking its LoggedModel
(named `<id>-v2`, with parameters), the compare view of v1 and v2 with a plot side by side, and the
registered model. Before that, a notebook of its own (written into the temporary folder) walks the
rest of a data scientist's loop: 100 MB of zips (a 100 MB beagle.zip of real images padded with
zeros, and cats.zip) picked through the create form's upload button, Create, until ready; v1 picked
in the serving picker, and the classify widget answering from v1 (no dalmatian class); a training
image removed from the gallery, and v3 trained and serving. JupyterLab runs with the project's
jupyter_server_config.py, as `make lab` does. Last, runs notebook 05 (delete). No cell may end in an error.
Screenshots go to docs/ (classify_widget.png, classify_widget_upload.png, mlflow-home-click-runs.png,
mlflow-runs-dogs.png, mlflow-compare-dogs.png, mlflow-registered-dogs.png, upload_form_100mb.png,
promote_v1.png, promote_v1_classify.png, gallery_removed.png, gallery_removed_status.png).
Exit status 0 means it passed.

    .venv/bin/python tools/browser_check.py [--docs docs] [--chromium /usr/bin/chromium]

Needs Debian's chromium (`apt-get install -y chromium`) and the `playwright` Python package (its
driver only: no browser is downloaded).
"""

from __future__ import annotations

import argparse
import json
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
SRC = ROOT / "src"  # this checkout's workbench, for the kernels and this script (not whatever the venv installed)
sys.path.insert(0, str(SRC))
TUTORIAL = ROOT / "data" / "tutorial"
UPLOAD = TUTORIAL / "test" / "2.jpg"  # a dalmatian (test/LABELS.txt): uploaded after dogs.jpg
UPLOAD_CLASS = "dalmatian"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[1-5]_*.ipynb"))
SHOWN = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in front (JupyterLab may restore others behind it)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_SECONDS = 90
RUN_SECONDS = int(
    os.environ.get("BROWSER_CHECK_RUN_SECONDS", 300)
)  # running every cell of the notebook (backbone load, classify, plots)
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^-{20,}\s*\n\s*\w+(Error|Exception|Interrupt)\b", re.M)
NO_NEWS = '{"fetchNews": "false", "checkForUpdates": false}'  # no news toast over the widget, no network
VIEWPORT = {"width": 1500, "height": 1100}
MLFLOW_VIEWPORT = {"width": 1900, "height": 1200}


def chromium_binary(given: str | None) -> str:
    """The real Chromium executable (Debian's /usr/bin/chromium is a shell wrapper around it)."""
    for candidate in [given, "/usr/lib/chromium/chromium", "/usr/bin/chromium"]:
        if candidate and Path(candidate).exists():
            return candidate
    sys.exit("chromium not found: apt-get install -y chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(root: Path, port: int, token: str) -> subprocess.Popen:
    """JupyterLab from this venv (so its kernel is the venv's python3), serving `root` on 127.0.0.1."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--config={ROOT / 'jupyter_server_config.py'}",
    ]  # as `make lab`: uploads up to 256 MiB
    if os.geteuid() == 0:  # containers often run as root; JupyterLab refuses that unless told
        command.append("--allow-root")
    settings = root / ".lab-settings"
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(NO_NEWS)
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(root / ".jupyter-config"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
    )
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


def run_all(page: Page, url: str) -> None:
    """Opens a notebook in JupyterLab, runs all its cells and waits until each has run; fails on an error output."""
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
        f"() => {{ const p = [...document.querySelectorAll('{SHOWN} .jp-CodeCell .jp-InputPrompt')];"
        " return p.length > 0 && p.every(e => /\\[\\d+\\]/.test(e.textContent)); }",
        timeout=RUN_SECONDS * 1000,
    )
    # JupyterLab draws an error output (a traceback) with the stderr mime type: told apart by its text
    stderr = page.locator(f'{SHOWN} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    errors = [text for text in stderr.all_inner_texts() if TRACEBACK.search(text)]
    assert not errors, f"{url}: {errors[0][:2000]}"
    print(
        f"ran {url.split('?')[0].rsplit('/', 1)[-1]}: stderr blocks {stderr.count()}"
        + (f" (first: {stderr.first.inner_text()[:300]!r})" if stderr.count() else "")
    )


def check_classify(page: Page, screenshot: Path) -> None:
    """03's classify widget: dragging the threshold slider re-filters the results; a screenshot of the widget."""
    page.locator(".workbench-classify .workbench-results").first.wait_for(timeout=30_000)
    page.locator(".workbench-classify").first.scroll_into_view_if_needed()  # JupyterLab renders only cells in view
    page.wait_for_function(  # the results line is drawn (the kernel may still be sending it)
        "() => [...document.querySelectorAll('.workbench-classify p')]"
        ".some(e => /^\\d+ classes at threshold/.test(e.innerText.trim()))",
        timeout=30_000,
    )
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


TOP_CUSTOM_CLASS = """() => {  // the results table's first row whose classifier is not `default`, as [class, score]
  const rows = [...document.querySelectorAll('.workbench-classify table.workbench-results tbody tr')];
  const row = rows.map(r => [...r.querySelectorAll('td')].map(d => d.innerText.trim())).find(c => c[0] !== 'default');
  return row ? row.slice(1).join(' ') : null; }"""


def check_upload(page: Page, screenshot: Path) -> None:
    """03's classify widget: an image picked with its image button (a person's upload) changes picture and answer."""
    widget = page.locator(".workbench-classify").first
    widget.scroll_into_view_if_needed()
    picture = widget.locator("img").first
    before_src, before_top = picture.get_attribute("src"), page.evaluate(TOP_CUSTOM_CLASS)
    print("before upload:", before_top)
    assert before_top and not before_top.startswith(UPLOAD_CLASS), before_top
    with page.expect_file_chooser(timeout=30_000) as chooser:  # the button opens the browser's file dialog
        widget.locator(".widget-upload").first.click()
    chooser.value.set_files(str(UPLOAD))  # what a person picks in it
    page.wait_for_function(  # the kernel classified the upload: the custom classifier's top class is now its class
        f"() => {{ const top = ({TOP_CUSTOM_CLASS})(); return top && top.startsWith('{UPLOAD_CLASS} '); }}",
        timeout=60_000,
    )
    page.wait_for_function(
        "([src]) => { const i = document.querySelector('.workbench-classify img');"
        " return i && i.src && i.src !== src && i.complete && i.naturalWidth > 0; }",
        arg=[before_src],
        timeout=30_000,
    )
    after_top = page.evaluate(TOP_CUSTOM_CLASS)
    print(f"after uploading {UPLOAD.relative_to(TUTORIAL)}:", after_top)
    assert after_top != before_top
    widget.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    widget.screenshot(path=str(screenshot))
    print("screenshot:", screenshot)


def start_mlflow(mlruns: Path, port: int) -> subprocess.Popen:
    """`mlflow server` on the notebooks' store (SQLite, artifacts as logged), one worker, no job runner."""
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{mlruns / 'mlflow.db'}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=open(mlruns.parent / "mlflow.log", "wb"),
        env=env,
        cwd=mlruns.parent,
        start_new_session=True,
    )
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return process
        except OSError:
            time.sleep(0.5)
    os.killpg(process.pid, 15)
    sys.exit(f"mlflow server did not start; see {mlruns.parent / 'mlflow.log'}")


def close_assistant(page: Page) -> None:
    """Closes MLflow's "Assistant" side panel (it takes the width the pages need); it opens itself on a first visit."""
    close = page.locator('[data-component-id="mlflow.assistant.chat_panel.close"]')
    try:
        close.first.wait_for(timeout=5000)  # it may open a moment after the page
    except PlaywrightTimeout:
        return
    close.first.click()
    page.wait_for_timeout(500)


KEY_COLUMNS = ("accuracy", "macro_f1", "ece")  # metric columns the "Key metrics" view must show


def runs_table_shown(page: Page) -> None:
    """Waits for the runs table (its v2 row) and fails if the GenAI overview is what shows."""
    page.get_by_text("v2", exact=True).first.wait_for(timeout=60_000)
    assert page.get_by_text("Token usage").count() == 0 and "/overview" not in page.url, page.url


def metric_columns_shown(page: Page) -> None:
    """Waits until the runs table's header names the key metrics."""
    page.wait_for_function(
        "(names) => { const heads = [...document.querySelectorAll('[role=columnheader]')].map(h => h.innerText.trim());"
        " return names.every(n => heads.includes(n)); }",
        arg=list(KEY_COLUMNS),
        timeout=60_000,
    )


def check_home_click(browser, ui: str, classifier_id: str, docs: Path) -> None:
    """A fresh browser profile: the home page, a click on the experiment, as a person would (and the README says).

    MLflow 3.17 opens an experiment in the mode of the sidebar's "GenAI | Model training" switch, GenAI
    in a browser that never flipped it, whatever the experiment's type: the first click is reported.
    Then the switch to "Model training" (remembered per browser), the click again: the runs table;
    its "Views" menu, "Key metrics": the metric columns.
    """
    context = browser.new_context(viewport=MLFLOW_VIEWPORT)  # no cookies, no localStorage: a first visit
    listed = (
        f'[data-testid="experiment-list-item-link"][title="{classifier_id}"]'  # on the home page's Recent Experiments
    )
    try:
        page = context.new_page()
        page.goto(f"{ui}/#/")
        page.locator(listed).first.click(timeout=60_000)
        page.wait_for_timeout(5000)  # the experiment page redirects to its default tab
        genai = "/overview" in page.url or page.get_by_text("Token usage").count() > 0
        print(
            f"fresh profile, home -> {classifier_id}:",
            page.url,
            "(the GenAI overview, as the README says)"
            if genai
            else "(NOT the GenAI overview: this MLflow honours the experiment's type; update the README)",
        )
        page.goto(f"{ui}/#/")
        page.get_by_text("Model training", exact=True).first.click(timeout=60_000)  # the sidebar switch
        page.locator(listed).first.click(timeout=60_000)
        runs_table_shown(page)
        print("after the switch, home -> experiment:", page.url)
        close_assistant(page)
        page.get_by_test_id("saved-views-trigger").click()
        page.get_by_text("Key metrics", exact=True).first.click()
        metric_columns_shown(page)
        page.wait_for_timeout(1500)
        page.screenshot(path=str(docs / "mlflow-home-click-runs.png"))
        print("key metrics view:", page.url)
    finally:
        context.close()


def check_mlflow(page: Page, ui: str, uri: str, docs: Path) -> None:
    """The runs table of `dogs`'s experiment, a registered version and its LoggedModel, v1 vs v2, registered model."""
    from mlflow import MlflowClient

    from workbench import tracking_uri
    from workbench.tracking.tags import KEY_METRICS_VIEW, UI_MODE

    uri = tracking_uri(uri)  # the notebooks' folder as workbench resolves it (its SQLite store)
    client = MlflowClient(uri, registry_uri=uri)
    [experiment] = [e for e in client.search_experiments() if e.tags.get("workbench.classifier_name") == "dogs"]
    cid = experiment.name
    runs = {r.info.run_name: r.info.run_id for r in client.search_runs([experiment.experiment_id])}
    check_home_click(page.context.browser, ui, cid, docs)
    page.set_viewport_size(MLFLOW_VIEWPORT)  # the compare view's artifact list needs the width
    # the link `wb.tracker.experiment_url` prints
    page.goto(f"{ui}/#/experiments/{experiment.experiment_id}/runs?{UI_MODE}&viewStateShareKey={KEY_METRICS_VIEW}")
    runs_table_shown(page)
    close_assistant(page)
    metric_columns_shown(page)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(docs / "mlflow-runs-dogs.png"))
    print("runs view:", page.url)
    page.goto(f"{ui}/#/models/{cid}/versions/2?{UI_MODE}")  # the registered version links its LoggedModel
    page.get_by_text("Source Model").first.wait_for(timeout=60_000)
    page.get_by_role("link", name=f"{cid}-v2", exact=True).first.click()
    page.get_by_text(re.compile(r"Parameters \(\d+\)")).first.wait_for(timeout=60_000)
    parameters = page.get_by_text(re.compile(r"Parameters \(\d+\)")).first.inner_text()
    assert parameters != "Parameters (0)" and f"{cid}-v2" in page.locator("body").inner_text(), parameters
    print(f"registered version 2 -> LoggedModel {cid}-v2:", page.url, parameters)
    pair = json.dumps([runs["v1"], runs["v2"]]).replace(" ", "")
    page.goto(f"{ui}/#/compare-runs?runs={pair}&experiments={json.dumps([experiment.experiment_id])}&{UI_MODE}")
    listed = page.get_by_text("threshold_curves.png", exact=True).last  # the compare view lists the plots
    listed.wait_for(timeout=60_000)
    listed.scroll_into_view_if_needed()
    listed.click(force=True)
    images = page.locator("img")  # each run's plot, drawn from a blob: URL (the file name is not in src)
    page.wait_for_function(
        "() => [...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth >= 400).length >= 2",
        timeout=60_000,
    )
    images.first.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(docs / "mlflow-compare-dogs.png"))
    print("compare view:", page.url, "images:", images.count())
    page.goto(f"{ui}/#/models/{cid}?{UI_MODE}")
    page.get_by_text("Version 2").first.wait_for(timeout=60_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(docs / "mlflow-registered-dogs.png"))
    print("registered model:", page.url)


# the data scientist's loop, past the tutorial: a 100 MB upload, promote, curate ---------------------------
BIG_ZIP_BYTES = 100 * 1000 * 1000  # Watson's 100 MB a zip
LOOP_NOTEBOOK = (
    "06_loop.ipynb"  # written into the temporary folder only: the form, the serving picker, classify, gallery
)


def padded_zip(images: Path, target: Path, size: int, count: int = 12) -> Path:
    """A zip of `count` real images, each followed by zero bytes (decoders stop at the image's end marker), stored
    uncompressed so the zip is `size` bytes give or take its headers (as tests/widgets/test_widgets.py makes it)."""
    import zipfile

    chosen = sorted(p for p in images.iterdir() if p.suffix.lower() == ".jpg")[:count]
    padding = (size - sum(p.stat().st_size for p in chosen)) // count
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for path in chosen:
            archive.writestr(path.name, path.read_bytes() + bytes(padding))
    return target


def write_loop_notebook(work: Path, parameters: dict) -> list[Path]:
    """The loop notebook and the zips it is given: a 100 MB beagle.zip and the tutorial's cats.zip."""
    from workbench.cli import zip_folder

    zips = work / "upload"
    zips.mkdir()
    uploads = [
        padded_zip(TUTORIAL / "beagle", zips / "beagle.zip", BIG_ZIP_BYTES),
        zip_folder(TUTORIAL / "cats", zips / "cats.zip"),
    ]
    cells = [
        "from workbench import Workbench, widgets\n"
        f"big = Workbench({str(work / 'home-big')!r}, tracking_uri='none')  # its own home: the upload's classifier\n"
        "form = widgets.ExamplesWidget(big)\nform.add_class('workbench-form')\nform",
        f"wb = Workbench({parameters['home']!r}, tracking_uri={parameters['tracking_uri']!r})\n"
        "cid = wb.find_classifier('dogs')\nstatus = widgets.StatusWidget(wb, cid)\n"
        "status.add_class('workbench-status')\nstatus",
        "classify = widgets.ClassifyWidget(wb, [cid], threshold=0.0)  # every class of the serving version\n"
        "classify.add_class('workbench-loop-classify')\nclassify",
        "gallery = widgets.Gallery(wb, cid)\ngallery.add_class('workbench-gallery')\ngallery",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(notebook, work / LOOP_NOTEBOOK)
    return uploads


def pick_files(page: Page, button, files: list[Path]) -> None:
    with page.expect_file_chooser(timeout=30_000) as chooser:  # the button opens the browser's file dialog
        button.click()
    chooser.value.set_files([str(f) for f in files])  # what a person picks in it


def check_big_upload(page: Page, uploads: list[Path], docs: Path) -> None:
    """The form: 100 MB of zips through its upload button (one websocket message), cats as negatives, Create, ready."""
    form = page.locator(f"{SHOWN} .workbench-form").first
    form.scroll_into_view_if_needed()
    total = sum(f.stat().st_size for f in uploads)
    started = time.monotonic()
    pick_files(page, form.locator(".widget-upload").first, uploads)
    form.get_by_text("example sets: beagle, cats").wait_for(timeout=300_000)  # the kernel has the bytes
    print(f"uploaded {total / 1e6:.1f} MB of zips through the form in {time.monotonic() - started:.1f} s")
    form.locator(".widget-dropdown", has_text="negatives").locator("select").select_option("cats")
    form.locator(".widget-text", has_text="name").locator("input").fill("big")
    form.get_by_role("button", name="Create").click()
    form.get_by_text(re.compile(r"created big_")).wait_for(timeout=60_000)
    form.locator(".widget-html", has_text=re.compile(r"big_\w+: ready")).first.wait_for(timeout=600_000)
    print(f"created from the upload and ready, {time.monotonic() - started:.1f} s after the pick")
    form.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    form.screenshot(path=str(docs / "upload_form_100mb.png"))


LOOP_CLASSES = f"""() => {{  // the loop classify widget's table: the classes of the custom classifier
  const rows = [...document.querySelectorAll('{SHOWN} .workbench-loop-classify table.workbench-results tbody tr')];
  return rows.map(r => [...r.querySelectorAll('td')].map(d => d.innerText.trim())).filter(c => c[0] !== 'default')
             .map(c => c[1]); }}"""


def check_promote(page: Page, docs: Path) -> None:
    """The serving picker: v1 serves (it never saw a dalmatian), and the classify widget answers from it."""
    status = page.locator(f"{SHOWN} .workbench-status").first
    status.scroll_into_view_if_needed()
    status.locator("select").first.select_option(label="v1")
    status.get_by_text(re.compile(r"serving v1 \(pinned")).wait_for(timeout=60_000)
    widget = page.locator(f"{SHOWN} .workbench-loop-classify").first
    widget.scroll_into_view_if_needed()
    pick_files(page, widget.locator(".widget-upload").first, [UPLOAD])
    page.wait_for_function(f"() => ({LOOP_CLASSES})().length > 0", timeout=60_000)
    classes = page.evaluate(LOOP_CLASSES)
    print("v1 serving, classify of", UPLOAD.name, "->", classes)
    assert sorted(classes) == ["beagle", "goldenretriever", "husky"], classes  # v1's classes: no dalmatian yet
    page.wait_for_timeout(500)
    page.locator(f"{SHOWN} .workbench-status").first.screenshot(path=str(docs / "promote_v1.png"))
    widget.screenshot(path=str(docs / "promote_v1_classify.png"))
    status.locator("select").first.select_option(label="newest (each training serves)")
    status.get_by_text(re.compile(r"serving v2$")).wait_for(timeout=60_000)


def check_remove(page: Page, docs: Path) -> None:
    """The gallery: remove the first image from training; the classifier retrains, and v3 serves."""
    gallery = page.locator(f"{SHOWN} .workbench-gallery").first
    gallery.scroll_into_view_if_needed()
    gallery.get_by_role("button", name="remove").first.click()
    status = page.locator(f"{SHOWN} .workbench-status").first
    status.get_by_text(re.compile(r"serving v3")).wait_for(timeout=600_000)
    print("removed one example: v3 trained and serves")
    gallery.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    gallery.screenshot(path=str(docs / "gallery_removed.png"))
    status.screenshot(path=str(docs / "gallery_removed_status.png"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, default=ROOT / "docs", help="where the screenshots go")
    parser.add_argument("--chromium", default=None, help="Chromium executable (default: Debian's)")
    args = parser.parse_args(argv)
    args.docs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="workbench-browser-") as tmp:
        work = Path(tmp)
        parameters = {"home": str(work / "home"), "tracking_uri": str(work / "mlruns"), "data_dir": str(TUTORIAL)}
        for path in NOTEBOOKS:
            nbformat.write(parameterize_notebook(load_notebook_node(str(path)), parameters), work / path.name)
        port, token, mlflow_port = free_port(), secrets.token_hex(16), free_port()
        uploads = write_loop_notebook(work, parameters)
        lab = start_lab(work, port, token)
        mlflow_ui = None
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium_binary(args.chromium), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                try:
                    for path in NOTEBOOKS:
                        if path.name.startswith("05"):  # after 04 and before the delete: the loop notebook
                            run_all(page, f"http://127.0.0.1:{port}/lab/tree/{LOOP_NOTEBOOK}?reset&token={token}")
                            check_big_upload(page, uploads, args.docs)
                            check_promote(page, args.docs)
                            check_remove(page, args.docs)
                        if path.name.startswith("05"):  # delete last, after the MLflow UI has shown `dogs`
                            mlflow_ui = start_mlflow(work / "mlruns", mlflow_port)
                            check_mlflow(page, f"http://127.0.0.1:{mlflow_port}", parameters["tracking_uri"], args.docs)
                        run_all(page, f"http://127.0.0.1:{port}/lab/tree/{path.name}?reset&token={token}")
                        if path.name.startswith("03"):
                            check_classify(page, args.docs / "classify_widget.png")
                            check_upload(page, args.docs / "classify_widget_upload.png")
                except Exception:
                    page.screenshot(path=str(args.docs / "browser_check.failed.png"), full_page=True)
                    print("failed; page saved as", args.docs / "browser_check.failed.png", file=sys.stderr)
                    raise
                finally:
                    browser.close()
        finally:
            lab.terminate()
            lab.wait(timeout=30)
            if mlflow_ui is not None:
                os.killpg(mlflow_ui.pid, 15)
                mlflow_ui.wait(timeout=30)
    print("browser check passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
