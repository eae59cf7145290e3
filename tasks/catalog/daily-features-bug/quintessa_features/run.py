"""Run the daily features job locally.

    python -m quintessa_features.run [--data-dir data] [--out out/daily_features.csv]

In production Airflow runs the same code with mode = "s3" and loads the result into
warehouse.quintessa.internal; this entry point only supports local files.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from quintessa_features import load, transform
from quintessa_features.config import load_settings

log = logging.getLogger("quintessa_features")


def main(argv: list[str] | None = None) -> int:
    settings = load_settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=settings.local_dir)
    parser.add_argument("--out", type=Path, default=settings.output_path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    events, users, plans = load.load_all(args.data_dir)
    features = transform.build_daily_features(events, users, plans)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    features.to_csv(args.out, index=False)
    log.info("wrote %d rows for %d users to %s", len(features), features["user_id"].nunique(),
             args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
