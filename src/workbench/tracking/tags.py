"""The names workbench writes into MLflow: tags on runs, registered versions and experiments, the alias, UI keys.

One namespace, so the tracker that writes them, the tests that read them and the tools that open
the MLflow UI spell them the same way.
"""

SERVING_ALIAS = "serving"  # the registered version classify uses

# Earlier MLflow 3 UIs open an experiment of this kind on its runs table. The installed 3.17's ignores it: a
# per-browser switch, "GenAI | Model training" (GenAI until a person flips it), decides, and a link's
# `?workflowType=machine_learning` (UI_MODE) overrides it for that page (README, "Every version in MLflow").
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
UI_MODE = (
    "workflowType=machine_learning"  # in a UI link: the "Model training" side of the switch, whatever the browser had
)
MODEL_VERSIONS_TAG = "mlflow.modelVersions"  # on a LoggedModel: its registered versions (the UI links them)
# A saved view of the runs table (the UI's "Views" menu; `?viewStateShareKey=<id>` opens it): the key metrics as
# columns. The UI's own default shows none, and a browser keeps its column choice per experiment, so a view
# the experiment carries is the one setting every browser sees.
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
KEY_METRICS_VIEW = "workbench-key-metrics"
NOTE_TAG = "mlflow.note.content"  # MLflow shows it as the run / experiment description

# tags on runs, registered versions and experiments
TAG_KIND = "workbench.kind"  # "version" (a successful training) or "failed_training"
TAG_VERSION = "workbench.version"
TAG_PARENT = "workbench.parent_version"
TAG_OUTCOME = "workbench.outcome"  # "ready" or "failed"
TAG_ADDED = "workbench.added"  # what the update added, in words
TAG_CURATED = "workbench.curated"  # what curations removed or relabelled since the parent version, in words
TAG_EXPLANATION = "workbench.explanation"
TAG_REGISTERED = "workbench.registered_version"
TAG_LOGGED = "workbench.logged"  # set last: the run is complete
TAG_LOGGING_SINCE = "workbench.logging_since_ms"  # when logging began
TAG_OWNER = "workbench.logging_owner"  # host:pid:start of the process logging the run
TAG_HEARTBEAT = "workbench.heartbeat_ms"  # last sign of life of that process, while it logs
TAG_ABANDONED = "workbench.abandoned"  # why a half-logged run was ended FAILED (its version is logged afresh)
TAG_ADOPTED = "workbench.adopted"  # why another process marked a completely logged run FINISHED
KIND_ABANDONED = "abandoned_logging"  # TAG_KIND of a half-logged run that was ended
TAG_DELETED = "workbench.deleted"
TAG_CLASSES = "workbench.classes"  # the class list (JSON): a tag, not a param axis
TAG_CLASSIFIER_ID = "workbench.classifier_id"  # on runs
TAG_CLASSIFIER_NAME = "workbench.classifier_name"  # on runs, experiments and registered models
TAG_CLASSIFIER_OWNER = "workbench.owner"  # the classifier's owner (not the process logging: TAG_OWNER)
