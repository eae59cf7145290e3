"""Offline evaluation of the Borealis Freight shipper churn model.

Maintained by the Borealis Freight pricing & retention ML team (tomas.lindqvist@borealisfreight.com).
"""

__version__ = "0.9.0"
