"""Quintessa Mind daily features: raw app events -> one row per user and day.

Owned by Quintessa Labs Data Platform (maya.okafor@quintessa.io). The production job runs
nightly in Airflow and writes to warehouse.quintessa.internal (schema ``features``).
"""

__version__ = "1.4.2"
