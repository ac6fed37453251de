"""A test's child process: the Watson server on 127.0.0.1 over one home, its trainings held at a stage on request.

    python gated_server.py HOME STAGE

Prints `url <base url>` once it serves (no API keys: loopback only), then `reached <classifier id>`
each time a training reaches STAGE, and holds that training there until a line arrives on stdin.
It serves until it is terminated. Tracking is off; the embedding cache is the home's own.
"""

from __future__ import annotations

import sys
import threading

from workbench import ClassifierEvent, Workbench
from workbench.server.app import create_app
from workbench.server.runner import ServerThread
from workbench.server.settings import ServerSettings


def main(home: str, stage: str) -> None:
    workbench = Workbench(home, tracking_uri=False)

    def gate(event: ClassifierEvent) -> None:
        if event.stage == stage:
            print(f"reached {event.classifier_id}", flush=True)
            sys.stdin.readline()

    workbench.subscribe(gate)
    with ServerThread(create_app(workbench, settings=ServerSettings(auth=False))) as url:
        print(f"url {url}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main(*sys.argv[1:3])
