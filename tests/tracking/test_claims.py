"""The logging claim's file: removed once a deleted classifier's history is logged, safely for other holders."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from support.sets import create_small
from workbench.tracking.claims import CLAIMS_DIR, LoggedElsewhere, file_claim, remove_leftovers

WAIT_S = 60.0


def descriptors_on(path: Path) -> int:
    """How many descriptors of this process have `path` open (the same file, not a removed one)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
        except OSError:
            pass
    return count


def test_create_then_delete_leaves_no_claim_file(make_workbench, tmp_path) -> None:
    wb = make_workbench(tracking_uri=tmp_path / "mlruns")
    cid = create_small(wb, tmp_path / "sets")
    assert wb.tracker.flush(timeout=WAIT_S)
    claims = wb.home / CLAIMS_DIR
    assert (claims / f"{cid}.lock").exists()  # taken while its version was logged
    wb.delete_classifier(cid)
    assert wb.tracker.flush(timeout=WAIT_S)
    assert not (claims / f"{cid}.lock").exists()
    assert wb.tracker.sweep()  # a later sweep makes none again
    assert sorted(p.name for p in claims.iterdir()) == []


def test_a_waiter_on_a_removed_claim_file_takes_the_path_afresh(tmp_path) -> None:
    """Holder A removes the file while B, which opened it already, waits for its lock: B must not lock the
    removed file (then C, opening the path anew, would hold the claim beside B)."""
    path = tmp_path / CLAIMS_DIR / "pets_1.lock"
    a_holds, a_release, b_holds, b_release = (threading.Event() for _ in range(4))
    b_inode: list[int] = []

    def holder_a() -> None:
        with file_claim(tmp_path, "pets_1") as claim:
            a_holds.set()
            assert a_release.wait(WAIT_S)
            claim.remove()

    def waiter_b() -> None:
        with file_claim(tmp_path, "pets_1", wait_s=WAIT_S) as claim:
            b_inode.append(os.fstat(claim.fd).st_ino)
            b_holds.set()
            assert b_release.wait(WAIT_S)

    a = threading.Thread(target=holder_a)
    b = threading.Thread(target=waiter_b)
    a.start()
    try:
        assert a_holds.wait(WAIT_S)
        b.start()
        while descriptors_on(path) < 2:  # B has opened the file A holds (it polls for the lock now)
            assert b.is_alive()
            threading.Event().wait(0.01)
        a_release.set()
        a.join(WAIT_S)
        assert b_holds.wait(WAIT_S)
        assert path.exists() and os.stat(path).st_ino == b_inode[0]  # B holds the file the path names
        with pytest.raises(LoggedElsewhere), file_claim(tmp_path, "pets_1", wait_s=0):
            pass  # C: the claim is B's
    finally:
        a_release.set()
        b_release.set()
        a.join(WAIT_S)
        if b.ident is not None:
            b.join(WAIT_S)
    with file_claim(tmp_path, "pets_1", wait_s=0):
        pass  # free again


def test_leftover_claim_files_are_removed_unless_held_or_kept(tmp_path) -> None:
    folder = tmp_path / CLAIMS_DIR
    folder.mkdir()
    for name in ("gone_1", "gone_2", "live_3"):
        (folder / f"{name}.lock").touch()
    with file_claim(tmp_path, "gone_2"):  # another process is at it: its file stays
        assert remove_leftovers(tmp_path, {"live_3"}) == ["gone_1.lock"]
    assert sorted(p.name for p in folder.iterdir()) == ["gone_2.lock", "live_3.lock"]
    assert remove_leftovers(tmp_path, {"live_3"}) == ["gone_2.lock"]
