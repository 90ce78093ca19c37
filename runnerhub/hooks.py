"""Request hooks: how the HTTP core reports its traffic to an observer.

Subclass :class:`Hooks`, override what you need and pass an instance to each
provider (``hooks=``). Every method is a no-op here, and the core imports no
metrics library: ``runnerhub.monitor`` exports these to Prometheus. Hooks run
on the event loop in the middle of a request, so they must be quick and must
not raise.
"""

from __future__ import annotations

__all__ = ["Hooks"]


class Hooks:
    """Observer of one or more providers' requests; every method is a no-op."""

    def on_attempt(
        self, provider: str, account: str, operation: str, code: str, seconds: float
    ) -> None:
        """One HTTP attempt finished.

        Args:
            provider: The vendor, e.g. ``"soda"``.
            account: The account label.
            operation: The route's operation, e.g. ``"list_runners"``.
            code: The status as text (``"200"``), or ``"error"`` when no status came.
            seconds: Time on the wire.
        """

    def on_retry(self, provider: str, account: str, operation: str) -> None:
        """An attempt is about to be retried."""

    def on_rate_limited(self, provider: str, account: str, operation: str) -> None:
        """The vendor refused for rate limiting (a 429, or a rate-limit 403)."""

    def on_limiter_wait(self, provider: str, account: str, operation: str, seconds: float) -> None:
        """A request got its rate-limit slot after ``seconds`` of waiting (0.0 too)."""
