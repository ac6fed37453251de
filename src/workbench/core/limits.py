"""Limits on inputs, with units in their names; `Limits` lets a caller change them."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from .errors import InvalidRequest

THREADS_ENV = "WORKBENCH_THREADS"  # caps the threads each backbone engine uses (a Spark worker: spark.task.cpus)
MIN_IMAGES_PER_SET = 10  # Watson: at least 10 images in each example zip
MIN_EXAMPLE_SETS = 2  # create: two positive sets, or one positive and the negatives
MAX_ZIP_IMAGES = 10_000  # Watson: images per training zip
MAX_ZIP_BYTES = 100 * 1024 * 1024  # Watson: bytes per zip
# Watson: "a maximum of 256 MB per training call" (ibm-docs/customizing.md). Here it bounds the images' uncompressed
# bytes across every example set of one create or update, so a small upload of well-compressed zips cannot make
# the server hold or write gigabytes.
MAX_REQUEST_BYTES = 256 * 1024 * 1024
# Entries in one zip's central directory, folders and __MACOSX files included (a Mac zip of 10,000 images holds
# about 20,000). Watson states none; without it a zip of a million empty members took minutes and 1 GB to refuse.
MAX_ZIP_MEMBERS = 3 * MAX_ZIP_IMAGES
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # Watson: bytes per classified image
MAX_IMAGE_PIXELS = 40_000_000  # decompression-bomb cap on pixels decoded (a JPEG counts at its 1/8-scale draft size)
MIN_IMAGE_SIDE_PX = 32  # Watson: minimum 32x32
MAX_CLASSIFY_IMAGES_HTTP = 20  # Watson: images per classify call on the HTTP front
FORBIDDEN_CLASS_CHARS = set("$*-{}\\|/'\"`[]")  # Watson: not allowed in class names
# MLflow caps metric and param keys at 250 characters; the longest key made from a class name is
# "precision/<class>" (10 + length), so 200 leaves room for longer prefixes later.
MAX_CLASS_NAME_CHARS = 200
MAX_CLASSIFIER_NAME_CHARS = 256
DOCTOR_GRACE_S = 60.0  # `workbench doctor` reports files younger than this but does not remove them


@dataclass(frozen=True)
class Limits:
    """Input limits for one Workbench; the defaults are Watson's documented limits (max_zip_members is ours)."""

    min_images_per_set: int = MIN_IMAGES_PER_SET
    max_zip_images: int = MAX_ZIP_IMAGES
    max_zip_bytes: int = MAX_ZIP_BYTES
    max_image_bytes: int = MAX_IMAGE_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    min_image_side_px: int = MIN_IMAGE_SIDE_PX
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_zip_members: int = MAX_ZIP_MEMBERS

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, with the limits LIMITS_ENV names overridden by their environment variables when set."""
        changes = {}
        for name, env in LIMITS_ENV.items():
            raw = os.environ.get(env, "").strip()
            if raw:
                if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
                    raise InvalidRequest(f"{env} must be a whole number of at least 1, got {raw!r}")
                changes[name] = int(raw)
        return replace(cls(), **changes)


LIMITS_ENV = {  # Limits field: environment variable (read by Workbench, so by the CLI and the server)
    "max_request_bytes": "WORKBENCH_MAX_REQUEST_BYTES",
    "max_zip_members": "WORKBENCH_MAX_ZIP_MEMBERS",
}

# Classify by URL (the HTTP front's fetcher): what one remote image may cost the server.
URL_FETCH_DEADLINE_S = 10.0  # connect to last byte, every redirect included
URL_MIN_BYTES_PER_S = 16 * 1024  # average rate a fetch must keep once URL_RATE_GRACE_S have passed
URL_RATE_GRACE_S = 2.0  # a fetch may be slower than URL_MIN_BYTES_PER_S for its first seconds (connect, TLS, headers)
URL_FETCHES_PER_HOST = 4  # fetches in flight to one scheme://host:port; the next answers 503 at once
URL_FETCH_THREADS = 8  # classify calls with URLs run on their own threads, never on the ones other requests use
URL_QUEUE_WAIT_S = 10.0  # a classify call with URLs waits this long for one of those threads, then answers 503
URL_MAX_REDIRECTS = 5  # each hop is checked against the allow-list like the first URL

# Connections to the HTTP front (`workbench serve`): what one slow or idle client may hold.
HTTP_HEADER_TIMEOUT_S = 10.0  # request line and headers must be in within this of connecting, or of the previous answer
HTTP_KEEP_ALIVE_S = (
    5  # a connection idle (not one byte) after an answer is closed after this (uvicorn's timeout_keep_alive)
)
HTTP_BODY_MIN_BYTES_PER_S = 16 * 1024  # average rate a request body must keep once HTTP_BODY_RATE_GRACE_S have passed
HTTP_BODY_RATE_GRACE_S = 10.0  # a body may be slower than HTTP_BODY_MIN_BYTES_PER_S for its first seconds
HTTP_BODY_IDLE_S = 20.0  # a body that sends nothing for this long is cut off, whatever its average
HTTP_BACKLOG = 2048  # connections the kernel queues for accept (uvicorn's default, said here)
