"""LocalStack provider plugin that serves elbv2 from moto (see provider.py)."""
