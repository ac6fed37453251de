"""`python -m bench.ceiling`: classify FP32 and INT8 against their decode + inference ceilings, in one run.

The four phases `python -m bench` uses for the ceiling rows (`limit`, `decode`, `classify`, `classify_int8`,
each in its own process, `bench.phases`), run back to back `--rounds` times (`bench.__main__.ceiling_round`), so
each round's ratios come from numbers measured minutes apart on the same machine. INT8 classifies a copy of the
FP32 home, once its classifier was retrained on INT8. Prints, per round and as medians: the limits, decode cost,
the ceilings (`bench.__main__.ceiling`), classify img/s and CPU ms per image, the ratios, and the 1-minute load
average beside each phase (the machine may be shared: ratios measured back to back, and CPU time per image, hold
better than absolute rates under load). Then the paired phases, which give the bench's ratio rows: limit, decode
and classify in one process, seconds apart, repeated. Writes nothing.

    .venv/bin/python -m bench.ceiling --rounds 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.__main__ import ceiling_round, paired, run_phase
from bench.phases import TRAIN_FOLDERS, TUTORIAL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    from workbench.cli import zip_folder

    with tempfile.TemporaryDirectory(prefix="workbench-ceiling-") as name:
        tmp = Path(name)
        (tmp / "zips").mkdir()
        for folder in TRAIN_FOLDERS:
            zip_folder(TUTORIAL / folder, tmp / "zips" / f"{folder}.zip")
        run_phase("create", tmp / "train", 1)
        rows = []
        for index in range(args.rounds):
            rows.append(ceiling_round(tmp, tmp / "train")["ratios"])
            print(f"round {index + 1}: " + ", ".join(f"{k} {_shown(v)}" for k, v in rows[-1].items()), flush=True)
        keys = [k for k in rows[0] if k != "load"]
        print("median: " + ", ".join(f"{k} {statistics.median(r[k] for r in rows):.2f}" for k in keys), flush=True)
        for name, phase in paired(tmp / "train").items():
            print(
                f"{name}: ratio {phase['ratio']:.2f} (to the 1-thread decode ceiling "
                f"{phase['ratio_single_thread_decode']:.2f}; less stolen time {phase['ratio_steal_corrected']:.2f}, "
                f"{phase['stolen_share']:.0%} stolen); repeats"
            )
            print("\n".join(f"  {_pair(r)}" for r in phase["repeats"]), flush=True)


def _pair(row: dict) -> str:
    decode = f"decode {row['decode_ms']:.2f} (all cores {row['decode_all_cores_ms']:.2f})"
    stolen = f"less stolen {row['ratio_steal_corrected']:.2f}, {row['stolen_share']:.0%} stolen"
    return f"limit {row['limit']:.0f} {decode} ceiling {row['ceiling']:.0f} -> {row['ratio']:.2f} ({stolen})"


def _shown(value: object) -> str:
    if isinstance(value, list):
        return "[" + " ".join(f"{v:.1f}" for v in value) + "]"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
