"""Runs left behind: settling what a dead process (or this one, cut off) left RUNNING; forgetting deleted classifiers.

A RUNNING run whose logger is dead or silent is finished when it was completely logged (adopted),
else ended FAILED, or KILLED when its classifier was deleted, tagged with why; its version is then
logged afresh. `out_of_sync` says, in words, what MLflow still lacks against the store.
"""

from __future__ import annotations

import logging
from typing import Any

from ..core.errors import TrackingError
from ..store import owners
from ..store.database import Store
from . import tracked_files
from .run_record import iso_to_ms
from .tags import (
    KIND_ABANDONED,
    SERVING_ALIAS,
    TAG_ABANDONED,
    TAG_ADOPTED,
    TAG_DELETED,
    TAG_HEARTBEAT,
    TAG_KIND,
    TAG_LOGGED,
    TAG_LOGGING_SINCE,
    TAG_OWNER,
    TAG_VERSION,
)
from .tracked_files import ClassifierFiles

log = logging.getLogger(__name__)

HEARTBEAT_TIMEOUT_SECONDS = 300.0  # a RUNNING run whose logger was silent this long is abandoned (any host)


def running_runs(client) -> list:
    """Every RUNNING run of the tracking store, in any experiment: deleted runs and deleted experiments included.

    A deleted (soft) run keeps its status, so one deleted while RUNNING stays RUNNING where the MLflow UI
    and a default search do not show it.
    """
    from mlflow.entities import ViewType

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    if not experiments:
        return []
    return client.search_runs(
        experiments, filter_string="attributes.status = 'RUNNING'", run_view_type=ViewType.ALL, max_results=5000
    )


def out_of_sync(client, store: Store) -> list[str]:
    """What MLflow still lacks against the store, in words; empty once the tracker has converged.

    Converged means: no run left RUNNING (deleted ones included), no deleted classifier whose history
    still waits in `<home>/mlflow-pending/`, every stored version of every classifier a FINISHED run and
    a registered version, and the alias `serving` on the version classify uses.
    """
    missing = [
        f"run {r.info.run_id} still RUNNING" + (" (deleted)" if r.info.lifecycle_stage == "deleted" else "")
        for r in running_runs(client)
    ]
    live = store.classifier_ids()
    missing += [
        f"{cid}: deleted, its history not logged yet ({tracked_files.PENDING_DIR}/)"
        for cid in tracked_files.staged_ids(store)
        if cid not in live
    ]
    for record in store.classifiers():
        cid = record.classifier_id
        experiment = client.get_experiment_by_name(cid)
        if experiment is None:
            missing.append(f"{cid}: no experiment")
            continue
        runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`{TAG_KIND}` = 'version'")
        finished = sorted(int(r.data.tags[TAG_VERSION]) for r in runs if r.info.status == "FINISHED")
        registered = sorted(int(v.tags[TAG_VERSION]) for v in client.search_model_versions(f"name='{cid}'"))
        stored = [v.version for v in store.versions(cid)]
        if finished != stored or registered != stored:
            missing.append(f"{cid}: finished runs {finished}, registered {registered}, store {stored}")
            continue
        if stored:
            from mlflow.exceptions import MlflowException

            try:
                alias = client.get_model_version_by_alias(cid, SERVING_ALIAS).tags[TAG_VERSION]
            except MlflowException:  # registered, but the tracker has not set the alias yet
                missing.append(f"{cid}: alias serving not set yet")
                continue
            if alias != str(record.serving_version):
                missing.append(f"{cid}: alias serving -> v{alias}, store serves v{record.serving_version}")
    return missing


class Recovery:
    """Settles the runs a tracker finds left RUNNING, and forgets deleted classifiers in MLflow.

    `owner` is this process (`host:pid:start`); a run it began and could not finish (`failed_part_way`)
    is its own debris: ended and deleted, as its version is logged afresh.
    """

    def __init__(self, owner: str, interval_s: float) -> None:
        self.owner = owner
        self.interval_s = interval_s  # for the messages: when the next sync looks again
        self.heartbeat_timeout_s = HEARTBEAT_TIMEOUT_SECONDS
        self._abandoned: set[str] = set()  # run ids this tracker began but could not finish logging

    def failed_part_way(self, run_id: str) -> None:
        """A run this tracker began could not be finished: the next sync ends and deletes it."""
        self._abandoned.add(run_id)

    def why_abandoned(self, run) -> str | None:
        """Why a RUNNING run's logging will never finish (its owner is dead or silent), or None if it may."""
        if run.info.run_id in self._abandoned:
            return f"its logging by {self.owner} failed part-way"
        tags = run.data.tags
        heartbeat = tags.get(TAG_HEARTBEAT) or tags.get(TAG_LOGGING_SINCE) or run.info.start_time
        return owners.why_abandoned(
            tags.get(TAG_OWNER), int(heartbeat) if heartbeat else None, self.heartbeat_timeout_s
        )

    def version_runs(
        self, client, experiment_id: str, files: ClassifierFiles, deleted: bool = False
    ) -> tuple[dict[int, Any], dict[int, str]]:
        """Completely logged version runs by version, and the versions a live process is logging now (with its owner).

        Runs left RUNNING by a process that is gone are settled first: a completely logged one is
        finished, a half-logged one is ended FAILED (tagged why) and its version logged afresh.
        """
        complete: dict[int, Any] = {}
        busy: dict[int, str] = {}
        for run in client.search_runs([experiment_id], max_results=5000):
            tags = run.data.tags
            version_run = tags.get(TAG_KIND) == "version"
            logged = tags.get(TAG_LOGGED) == "true"
            if run.info.status == "RUNNING":
                why = self.why_abandoned(run)
                if why is None:
                    if version_run and not logged:
                        busy[int(tags[TAG_VERSION])] = tags.get(TAG_OWNER, "an unknown process")
                    continue
                if not (version_run and logged):
                    self._abandon(client, run, files.classifier_id, why, deleted)
                    continue
                self._adopt(client, run, files, why)
            if version_run and logged:
                complete.setdefault(int(tags[TAG_VERSION]), run)
        return complete, busy

    def _abandon(self, client, run, classifier_id: str, why: str, deleted: bool = False) -> None:
        """Ends a half-logged run (FAILED; KILLED if its classifier is `deleted`), tagged with why, and drops the
        registered versions it made.

        A run of a dead process stays as evidence of the crash; one this tracker failed to finish
        (an outage, a delete under way) is its own debris and is deleted too, as it is logged afresh.
        Ended first either way: a deleted run keeps its status, and one left RUNNING would stay so for good.
        """
        run_id, tags = run.info.run_id, run.data.tags
        for stale in client.search_model_versions(f"name='{classifier_id}' and run_id='{run_id}'"):
            client.delete_model_version(classifier_id, stale.version)
        if tags.get(TAG_KIND) == "version":
            client.set_tag(run_id, TAG_KIND, KIND_ABANDONED)  # not a version run any more: it is logged afresh
            client.set_tag(run_id, "mlflow.runName", f"v{tags.get(TAG_VERSION)} (abandoned)")
        self._end(client, run, why, deleted)
        if run_id in self._abandoned:  # tagged first: restoring a deleted experiment restores its deleted runs too
            client.delete_run(run_id)
            self._abandoned.discard(run_id)

    def _adopt(self, client, run, files: ClassifierFiles, why: str) -> None:
        """Finishes a completely logged run whose owner died before marking it FINISHED."""
        number = int(run.data.tags[TAG_VERSION])
        created = [v.created for v in files.versions if v.version == number]
        client.set_tag(run.info.run_id, TAG_ADOPTED, f"Finished by {self.owner}: {why}.")
        client.set_terminated(run.info.run_id, "FINISHED", end_time=iso_to_ms(created[0]) if created else None)

    def _end(self, client, run, why: str, deleted: bool) -> None:
        """Ends a RUNNING run whose logging never finishes: FAILED, or KILLED if its classifier is gone; tagged why."""
        run_id = run.info.run_id
        client.set_tag(
            run_id,
            TAG_ABANDONED,
            f"Logging never finished: {why}." + (" Its classifier was deleted." if deleted else ""),
        )
        if deleted:
            client.set_tag(run_id, TAG_DELETED, "true")
        client.set_terminated(run_id, "KILLED" if deleted else "FAILED")

    def end_hidden_runs(self, client) -> bool:
        """Ends workbench runs left RUNNING where no classifier's sync looks: deleted runs, runs in deleted experiments.

        An older tracker, or a process that died, may have left them (a delete while MLflow was down).
        False while one cannot be ended yet (its logger still alive).
        """
        hidden = [
            run for run in running_runs(client) if run.info.lifecycle_stage == "deleted" and TAG_KIND in run.data.tags
        ]
        return all([self._end_hidden(client, run) for run in hidden])

    def _end_hidden(self, client, run) -> bool:
        """Ends one deleted run left RUNNING (restored for the moment it takes); False if its logger still lives."""
        why = self.why_abandoned(run)
        if why is None:
            return False
        experiment = client.get_experiment(run.info.experiment_id)
        deleted = experiment.lifecycle_stage == "deleted" or experiment.tags.get(TAG_DELETED) == "true"
        run_id = run.info.run_id
        client.restore_run(run_id)  # MLflow changes only active runs; its experiment stays deleted
        try:
            self._end(client, run, why, deleted)
        finally:
            client.delete_run(run_id)
        self._abandoned.discard(run_id)
        return True

    def end_runs_of_deleted(self, client, experiment_id: str) -> None:
        """Ends the runs left RUNNING in a deleted classifier's experiment; TrackingError if a logger is alive."""
        from mlflow.entities import ViewType

        running = client.search_runs(
            [experiment_id], filter_string="attributes.status = 'RUNNING'", run_view_type=ViewType.ALL, max_results=5000
        )
        waiting = [run.info.run_id for run in running if not self._end_hidden(client, run)]
        if waiting:
            raise TrackingError(
                f"run(s) {', '.join(waiting)} of a deleted classifier are still being logged by a live "
                f"process; ended once it stops, checked again in {self.interval_s:g} s"
            )

    def forget(self, client, classifier_id: str) -> None:
        """A deleted classifier: its registered model goes; its runs stay, tagged deleted."""
        from mlflow.exceptions import MlflowException

        experiment = client.get_experiment_by_name(classifier_id)
        if experiment is None:
            return
        try:
            client.delete_registered_model(classifier_id)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
        if experiment.lifecycle_stage == "deleted":  # forgotten already (MLflow refuses writes into it)
            return
        runs = client.search_runs([experiment.experiment_id], max_results=5000)
        live = [run.info.run_id for run in runs if run.info.status == "RUNNING" and self.why_abandoned(run) is None]
        if live:  # its logger finishes it first (a deleted experiment's runs cannot be changed)
            raise TrackingError(
                f"run(s) {', '.join(live)} of deleted {classifier_id} are still being logged by a "
                f"live process; its experiment is deleted once they end"
            )
        for run in runs:
            if run.info.status == "RUNNING":  # its logger is gone: ended, not left RUNNING in a deleted experiment
                why = self.why_abandoned(run)
                assert why is not None
                self._end(client, run, why, deleted=True)
            elif run.data.tags.get(TAG_DELETED) != "true":
                client.set_tag(run.info.run_id, TAG_DELETED, "true")
        client.set_experiment_tag(experiment.experiment_id, TAG_DELETED, "true")
        client.delete_experiment(experiment.experiment_id)  # soft: restorable, its runs kept
