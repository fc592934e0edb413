"""The pure functional core of tierstream: metrics, tier decisions, alerts and signals.

Nothing here touches Kafka, Redis, asyncio, the environment or the wall clock; time comes
from events and day closes (see ``scoring.step``).
"""
