"""Hooks: a provider reports its traffic to them (metrics, progress displays).

Subclass :class:`Hooks`, override what you need, and pass an instance as a
provider's ``hooks=`` option. Every method is called synchronously on the
event loop from the HTTP core, so it must be quick and must not raise; the
arguments never include a credential, URL or body. A provider built without
hooks pays nothing for them.
"""

from __future__ import annotations

__all__ = ["Hooks"]


class Hooks:
    """No-op callbacks for one provider's requests; subclass and override.

    Every method receives the vendor (``provider``, e.g. "soda"), the
    account label and the operation ("get_runner", ...).
    """

    def on_attempt(
        self, provider: str, account: str, operation: str, code: str, seconds: float
    ) -> None:
        """One HTTP attempt ended.

        Args:
            code: The status as text ("200", "429"), or "error" when no answer came.
            seconds: Time on the wire, from send to the end of the body or the failure.
        """

    def on_retry(self, provider: str, account: str, operation: str) -> None:
        """A failed attempt will be retried (called before the back-off)."""

    def on_rate_limited(self, provider: str, account: str, operation: str) -> None:
        """The vendor refused an attempt for its rate limit (429, or a rate-limit 403)."""

    def on_limiter_wait(self, provider: str, account: str, operation: str, seconds: float) -> None:
        """An attempt got its rate-limit slot after ``seconds`` of waiting (0.0 too)."""
