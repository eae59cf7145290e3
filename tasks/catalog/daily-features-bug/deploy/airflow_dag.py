# Airflow DAG for the nightly Quintessa Mind features job (deployed by ci.quintessa.internal).
# Not used locally.
SCHEDULE = "15 2 * * *"
OWNER = "maya.okafor@quintessa.io"
WAREHOUSE_DSN = "redshift://features_writer@warehouse.quintessa.internal:5439/analytics"
TASKS = ["extract_events", "build_daily_features", "load_features"]
