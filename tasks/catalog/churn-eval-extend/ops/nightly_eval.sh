#!/bin/sh
# Nightly evaluation on batch-01.borealis.internal (cron 03:30 UTC). Not used locally.
set -eu
python -m borealis_eval.evaluate --scores /mnt/features/scores_test.csv --out /mnt/reports/eval.json
scp /mnt/reports/eval.json reports@dash.borealis.internal:/srv/reports/churn/
