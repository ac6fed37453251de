"""Links into the MLflow UI: a classifier's runs table, a compare view of runs, its registered model.

Every link opens the UI in its "Model training" mode whatever the browser last used (MLflow 3.17's
UI opens an experiment in GenAI mode in a browser that never switched).
"""

from __future__ import annotations

import json

from .tags import KEY_METRICS_VIEW, UI_MODE

UI_URL = "http://127.0.0.1:5000"  # where `mlflow ui --port 5000` serves, for the links the tracker builds


def experiment_url(experiment_id: str, base_url: str = UI_URL) -> str:
    """The runs table of an experiment, opened on its "Key metrics" view (the key metrics as columns)."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{UI_MODE}&viewStateShareKey={KEY_METRICS_VIEW}"


def compare_url(experiment_id: str, run_ids: list[str], base_url: str = UI_URL) -> str:
    """The compare view of these runs of one experiment (pick a plot under Artifacts)."""
    return (
        f"{base_url.rstrip('/')}/#/compare-runs?runs={json.dumps(list(run_ids), separators=(',', ':'))}"
        f"&experiments={json.dumps([experiment_id])}&{UI_MODE}"
    )


def registered_model_url(classifier_id: str, base_url: str = UI_URL) -> str:
    """The page of a classifier's registered model (its versions, `@ serving` on one)."""
    return f"{base_url.rstrip('/')}/#/models/{classifier_id}?{UI_MODE}"
