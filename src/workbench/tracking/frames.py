"""The tables tracking returns: a classifier's logged versions with their MLflow metrics, as a DataFrame.

pandas is imported on first use: a short CLI command builds a Tracker and needs no pandas.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..store.database import Store
from .run_record import count
from .tags import TAG_ADDED, TAG_CLASSES, TAG_KIND, TAG_PARENT, TAG_REGISTERED, TAG_VERSION

if TYPE_CHECKING:
    import pandas as pd

COUNT_METRICS = (
    "images",
    "negatives",
    "images_embedded",
    "images_cached",
    "classes",
)  # whole numbers in compare_versions


def versions_frame(client, store: Store, classifier_id: str) -> pd.DataFrame:
    """Every logged version of a classifier with its MLflow metrics, one row per version (oldest first)."""
    import pandas as pd

    experiment = client.get_experiment_by_name(classifier_id)
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'", max_results=5000
    )
    serving = store.classifier(classifier_id).serving_version
    rows = []
    for run in runs:
        tags = run.data.tags
        classes = tags.get(TAG_CLASSES) or run.data.params.get("classes", "[]")  # runs logged before the tag: a param
        rows.append(
            {
                "version": int(tags[TAG_VERSION]),
                "serving": int(tags[TAG_VERSION]) == serving,
                "registered_version": int(tags[TAG_REGISTERED]),
                "run_id": run.info.run_id,
                "parent_version": int(tags[TAG_PARENT]) if tags.get(TAG_PARENT) else None,
                "added": tags.get(TAG_ADDED),
                "class_names": json.loads(classes),
                **{key: count(value) if key in COUNT_METRICS else value for key, value in run.data.metrics.items()},
            }
        )
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows).sort_values("version").reset_index(drop=True)
    counts = [c for c in ("parent_version", *COUNT_METRICS) if c in frame]
    return frame.astype({c: "Int64" for c in counts})  # whole numbers, None as <NA> (not 1.0 and NaN)
