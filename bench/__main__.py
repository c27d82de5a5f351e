"""`python -m bench [NAME ...]`: run the benchmarks and write `bench/results/`.

```
python -m bench                       # all of them (make bench)
python -m bench engine_overhead startup
python -m bench --smoke --out /tmp/b  # tiny counts: checks the benchmarks, figures mean nothing
python -m bench --list
```

Each benchmark writes `<out>/<name>.json`; at the end `<out>/README.md` is rendered from every
result in `<out>`. Progress goes to stderr; stdout gets one JSON line per benchmark
(`{"benchmark", "error", "figures": [[figure, result, unit, verdict], ...]}`). Exit code 0 when
every benchmark measured (a missed target is a result, not an error), 1 when one failed, 2 for a
usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.common import RESULTS_DIR, BenchSettings, execute, usable_cores
from bench.report import write_readme

# name -> module; one module per benchmark, run in this order.
BENCHMARKS: dict[str, str] = {
    "startup": "bench.startup",
    "engine_overhead": "bench.engine_overhead",
    "train_throughput": "bench.train_throughput",
    "serving_overhead": "bench.serving_overhead",
    "router_overhead": "bench.router_overhead",
    "local_loop": "bench.local_loop",
    "demo_learning": "bench.demo_learning",
}

logger = logging.getLogger("bench")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny counts: check that each benchmark runs"
    )
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per figure (default: per benchmark)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"torch threads for training, serving and forward (default: {usable_cores()})",
    )
    parser.add_argument(
        "--out", type=Path, default=RESULTS_DIR, help="result folder (default: bench/results)"
    )
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the profiles taken where a target is missed"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks named on the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bench: %(message)s")
    if args.list:
        for name in BENCHMARKS:
            print(name)
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark {', '.join(map(repr, unknown))}; choose from "
            + ", ".join(BENCHMARKS)
        )
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats {args.repeats} must be at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads {args.threads} must be at least 1")
    settings = BenchSettings(
        smoke=args.smoke,
        repeats=args.repeats,
        threads=args.threads or usable_cores(),
        out_dir=args.out,
        profile=not args.no_profile,
    )
    failed = 0
    for name in args.names or list(BENCHMARKS):
        module = importlib.import_module(BENCHMARKS[name])
        logger.info("%s: running%s", name, " (smoke)" if settings.smoke else "")
        document = execute(name, module.TITLE, module.run, settings)
        if document["error"]:
            failed += 1
            logger.error("%s: not measured: %s", name, document["error"])
        for figure in document["figures"]:
            logger.info(
                "%s: %s = %s %s (target %s: %s)",
                name,
                figure["figure"],
                figure["result"],
                figure["unit"],
                figure["target"] or "-",
                figure["verdict"],
            )
        line = {
            "benchmark": name,
            "error": document["error"],
            "figures": [
                [f["figure"], f["result"], f["unit"], f["verdict"]] for f in document["figures"]
            ],
        }
        print(json.dumps(line), flush=True)
    readme = write_readme(settings.out_dir)
    logger.info("table written to %s", readme)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
