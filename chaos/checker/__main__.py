"""``python -m chaos.checker <run dir> [--json]``: check a run; exit 0 / 1 / 2.

Exit codes follow Jepsen's CLI: 0 valid, 1 invalid, 2 unknown, 254 bad arguments (no
such run directory).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chaos.checker.verdict import check_run, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m chaos.checker", description=__doc__)
    ap.add_argument("run", type=Path, help="run directory (histories/, final/, ...)")
    ap.add_argument("--json", action="store_true", help="print results.json instead")
    args = ap.parse_args(argv)
    try:
        result = check_run(args.run)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 254
    print(json.dumps(result.to_json(), indent=2) if args.json else summary(result))
    return result.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
