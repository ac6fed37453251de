"""Way 2's memory per worker: peak RSS of the MLflow pyfunc's `predict` (what `spark_udf` runs on each Arrow
batch, up to 10,000 rows of a partition) at two batch sizes, scoring in chunks (now) and whole (before).

    PYTHONPATH=src .venv/bin/python -m bench.pyfunc_memory [--rows 500,1500]

Each measurement is a fresh process: load the model, predict on N tutorial images as bytes, print the
peak RSS. "whole" sets PREDICT_CHUNK_IMAGES past N: every image decoded before one backbone run, as before.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.scale_out import trained_home, tutorial_images

MEASURE = """
import json, resource, sys, time
import pandas as pd
import workbench.pyfunc as pyfunc
model_dir, rows, chunk = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if chunk == "whole":
    pyfunc.PREDICT_CHUNK_IMAGES = 10**9
model = pyfunc._load_pyfunc(model_dir)
images = [open(p, "rb").read() for p in sys.argv[4:]]
frame = pd.DataFrame({"image": [images[i % len(images)] for i in range(rows)]})
model.predict(frame.head(2))  # the backbone loaded and warm
started = time.perf_counter()
answer = model.predict(frame)
seconds = time.perf_counter() - started
peak_rss_mb = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps({"rows": rows, "scoring": chunk, "peak_rss_mb": peak_rss_mb,
                  "img_per_s": round(rows / seconds, 1), "errors": int((answer["error"] != "").sum())}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="500,1500")
    args = parser.parse_args()
    from workbench import Workbench
    from workbench.pyfunc import save_pyfunc

    with tempfile.TemporaryDirectory() as tmp:
        home, cid = trained_home(Path(tmp))
        wb = Workbench(home, tracking_uri=False, train=False, resume=False)
        record = wb.store.classifier(cid)
        version = wb.store.version(cid, record.serving_version)
        model = Path(tmp) / "model"
        save_pyfunc(model, record, version, wb.store.head_path(cid, version.version), wb.backbone.backbone_id)
        images = [str(p) for p in tutorial_images()]
        for rows in map(int, args.rows.split(",")):
            for chunk in ("chunks", "whole"):
                done = subprocess.run(
                    [sys.executable, "-c", MEASURE, str(model / "data" / "classifier"), str(rows), chunk, *images],
                    capture_output=True,
                    text=True,
                    timeout=1800,
                )
                print(
                    done.stdout.strip().splitlines()[-1]
                    if done.returncode == 0
                    else json.dumps({"rows": rows, "scoring": chunk, "failed": done.stderr[-500:]}),
                    flush=True,
                )


if __name__ == "__main__":
    main()
