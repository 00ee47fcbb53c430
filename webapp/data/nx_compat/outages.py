"""The times the driver lost the embedded server, after which followers reopen."""

from __future__ import annotations

from pymongo import monitoring

from webapp.data.nx_compat.waking import wake_on_write


class Outages(monitoring.ConnectionPoolListener):
    """Counts the times the driver lost the server (it clears its pool of connections then:
    told at once, unlike server-description events, which the driver publishes later).

    Restarted, nx-27017 answers getMore on a change-stream cursor it no longer knows with empty
    batches instead of an error, so a follower would wait on a dead cursor for ever; and it
    drops its change triggers when it stops, so a change made before a follower reopens is
    not recorded at all. So followers reopen when this count moves, and a change stream opened
    before the latest outage does not count as live (follower.py).
    """

    def __init__(self) -> None:
        self.count = 0

    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None:
        self.count += 1
        wake_on_write.wake_everyone()  # no follower waits out its pause on a dead cursor

    def pool_created(self, event: monitoring.PoolCreatedEvent) -> None:
        pass

    def pool_ready(self, event: monitoring.PoolReadyEvent) -> None:
        pass

    def pool_closed(self, event: monitoring.PoolClosedEvent) -> None:
        pass

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        pass

    def connection_ready(self, event: monitoring.ConnectionReadyEvent) -> None:
        pass

    def connection_closed(self, event: monitoring.ConnectionClosedEvent) -> None:
        pass

    def connection_check_out_started(
        self, event: monitoring.ConnectionCheckOutStartedEvent
    ) -> None:
        pass

    def connection_check_out_failed(self, event: monitoring.ConnectionCheckOutFailedEvent) -> None:
        pass

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        pass

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        pass


outages = Outages()
