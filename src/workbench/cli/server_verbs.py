"""`serve` (the Watson v3 HTTP server, one process or `--workers N`) and `keys add|list|remove` (its API keys).

Their flags are here with the code that reads them; the server itself is imported only when they run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.limits import (
    HTTP_BODY_IDLE_S,
    HTTP_BODY_MIN_BYTES_PER_S,
    HTTP_BODY_RATE_GRACE_S,
    HTTP_HEADER_TIMEOUT_S,
    HTTP_KEEP_ALIVE_S,
)

if TYPE_CHECKING:
    from ..service.workbench import Workbench


def _positive_int(text: str) -> int:
    """argparse's type for a count of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


def add_server_verbs(verbs: argparse._SubParsersAction) -> None:
    """`serve` (the Watson v3 HTTP server) and `keys add|list|remove` (its API keys)."""
    serve = verbs.add_parser("serve", help="serve the Watson Visual Recognition v3 REST API")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    serve.add_argument("--no-auth", action="store_true", help="accept requests without an API key (loopback only)")
    serve.add_argument("--allow-remote-no-auth", action="store_true", help="allow --no-auth on a non-loopback host")
    serve.add_argument("--max-body-mb", type=float, default=None, help="largest request body (default 257 MB)")
    serve.add_argument("--max-classify-images", type=int, default=None, help="images per classify call (default 20)")
    serve.add_argument("--allow-file-root", type=Path, default=None, help="serve file:// image URLs under this folder")
    serve.add_argument(
        "--allow-url",
        action="append",
        default=[],
        metavar="PREFIX",
        help="allow http(s) image URLs under PREFIX (repeat)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a DNS name clients may send in Host besides IP addresses, localhost and --host (repeat; '*': any)",
    )
    serve.add_argument(
        "--header-timeout-s",
        type=float,
        default=HTTP_HEADER_TIMEOUT_S,
        help="close a connection whose request line and headers are not in within S seconds of "
        f"connecting or of its previous answer (default {HTTP_HEADER_TIMEOUT_S:g})",
    )
    serve.add_argument(
        "--keep-alive-s",
        type=int,
        default=HTTP_KEEP_ALIVE_S,
        help=f"close a connection silent for S seconds after an answer (default {HTTP_KEEP_ALIVE_S})",
    )
    serve.add_argument(
        "--body-min-kib-per-s",
        type=float,
        default=HTTP_BODY_MIN_BYTES_PER_S / 1024,
        help="answer 408 and close when a body averages under this many KiB/s after --body-grace-s "
        f"(default {HTTP_BODY_MIN_BYTES_PER_S / 1024:g}; 0: no minimum)",
    )
    serve.add_argument(
        "--body-grace-s",
        type=float,
        default=HTTP_BODY_RATE_GRACE_S,
        help=f"seconds a body may be slower than the minimum (default {HTTP_BODY_RATE_GRACE_S:g})",
    )
    serve.add_argument(
        "--body-idle-s",
        type=float,
        default=HTTP_BODY_IDLE_S,
        help=f"answer 408 and close when a body sends nothing for S seconds (default {HTTP_BODY_IDLE_S:g})",
    )
    serve.add_argument("--log-level", default="info", help="uvicorn's log level: debug, info, warning, error")
    serve.add_argument(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes on one socket and one home (default 1; one host only, see README)",
    )
    serve.add_argument("--listen-fd", type=int, default=None, help=argparse.SUPPRESS)  # a worker of --workers N
    serve.add_argument(
        "--prebuild-core-ml",
        action="store_true",
        help="build each new version's Core ML model right after its training (default: on first download)",
    )

    keys = verbs.add_parser("keys", help="API keys of the HTTP server (only their hashes are stored)")
    key_verbs = keys.add_subparsers(dest="keys_verb", required=True, help="what to do with the keys")
    add = key_verbs.add_parser("add", help="create a key for an owner and print it once")
    add.add_argument("owner", help="the owner whose classifiers the key reaches")
    add.add_argument("--key", default=None, help="store this key instead of a new random one")
    key_verbs.add_parser("list", help="owners, key ids and creation times")
    remove = key_verbs.add_parser("remove", help="remove an owner's keys, or one key by its id")
    remove.add_argument("owner_or_key_id", help="an owner (all their keys) or one key id from `keys list`")


def run_server_verbs(args: argparse.Namespace, wb: Workbench) -> object:
    """Runs `serve` (blocks until interrupted) or a `keys` verb."""
    from ..core.limits import HTTP_BACKLOG
    from ..server.keys import KeyFile, KeyRing
    from ..server.runner import check_exposure, serve
    from ..server.serve_workers import serve_workers
    from ..server.settings import MAX_BODY_BYTES, ServerSettings

    if args.verb == "serve":
        settings = ServerSettings(
            max_body_bytes=int(args.max_body_mb * 1024 * 1024) if args.max_body_mb else MAX_BODY_BYTES,
            max_classify_images=args.max_classify_images or ServerSettings.max_classify_images,
            file_url_root=args.allow_file_root,
            url_prefixes=tuple(args.allow_url),
            allowed_hosts=tuple(args.allowed_host),
            auth=not args.no_auth,
            http_header_timeout_s=args.header_timeout_s,
            http_keep_alive_s=args.keep_alive_s,
            body_min_bytes_per_s=args.body_min_kib_per_s * 1024,
            body_rate_grace_s=args.body_grace_s,
            body_idle_s=args.body_idle_s,
        )
        if args.workers > 1:
            check_exposure(args.host, settings, KeyRing(wb.home) if settings.auth else None, args.allow_remote_no_auth)
            serve_workers(args.argv, args.host, args.port, args.workers, HTTP_BACKLOG)
            return None
        serve(
            wb,
            args.host,
            args.port,
            settings=settings,
            allow_remote_no_auth=args.allow_remote_no_auth,
            log_level=args.log_level,
            listen_fd=args.listen_fd,
        )
        return None
    keys = KeyFile(wb.home)
    if args.keys_verb == "add":
        key = keys.add(args.owner, args.key)
        print("workbench: store this key now; only its hash is kept", file=sys.stderr)
        return {"owner": args.owner, "key": key}
    if args.keys_verb == "list":
        return {"keys": [{"owner": r.owner, "key_id": r.key_id, "created": r.created} for r in keys.records()]}
    gone = keys.remove(args.owner_or_key_id)
    return {"removed": [{"owner": r.owner, "key_id": r.key_id} for r in gone]}
