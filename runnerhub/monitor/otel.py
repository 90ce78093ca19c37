"""OpenTelemetry metrics from the request hooks (the ``otel`` extra: ``opentelemetry-api``).

    hooks = OTelHooks()                       # the global MeterProvider's "runnerhub" meter
    provider = SodaProvider(..., hooks=hooks)

The instruments mirror the Prometheus exporter's request metrics, with
OpenTelemetry's naming: ``runnerhub.requests`` (attributes provider,
operation, code), ``runnerhub.retries``, ``runnerhub.rate_limited`` (provider,
operation), and the histograms ``runnerhub.request.duration`` and
``runnerhub.limiter.wait`` in seconds. Accounts are not attributes: their
number grows with the fleet. Configuring the SDK and exporters is the
application's business; without an SDK the API's no-op meter records nothing.
"""

from __future__ import annotations

from opentelemetry import metrics

from ..hooks import Hooks

__all__ = ["OTelHooks"]


class OTelHooks(Hooks):
    """Request hooks that record OpenTelemetry metrics.

    Args:
        meter: Where the instruments are created (default: the global
            MeterProvider's ``"runnerhub"`` meter).
    """

    def __init__(self, meter: metrics.Meter | None = None) -> None:
        meter = meter if meter is not None else metrics.get_meter("runnerhub")
        self._requests = meter.create_counter(
            "runnerhub.requests", unit="{request}", description="HTTP attempts sent."
        )
        self._retries = meter.create_counter(
            "runnerhub.retries", unit="{request}", description="Attempts that were retries."
        )
        self._rate_limited = meter.create_counter(
            "runnerhub.rate_limited",
            unit="{response}",
            description="Rate-limit refusals received (429s and rate-limit 403s).",
        )
        self._duration = meter.create_histogram(
            "runnerhub.request.duration", unit="s", description="Time of each attempt on the wire."
        )
        self._wait = meter.create_histogram(
            "runnerhub.limiter.wait", unit="s", description="Time waiting for a rate-limit slot."
        )

    def on_attempt(
        self, provider: str, account: str, operation: str, code: str, seconds: float
    ) -> None:
        """Count an attempt and record its duration."""
        where = {"provider": provider, "operation": operation}
        self._requests.add(1, {**where, "code": code})
        self._duration.record(seconds, where)

    def on_retry(self, provider: str, account: str, operation: str) -> None:
        """Count a retry."""
        self._retries.add(1, {"provider": provider, "operation": operation})

    def on_rate_limited(self, provider: str, account: str, operation: str) -> None:
        """Count a rate-limit refusal."""
        self._rate_limited.add(1, {"provider": provider, "operation": operation})

    def on_limiter_wait(
        self, provider: str, account: str, operation: str, seconds: float
    ) -> None:
        """Record a wait for a rate-limit slot."""
        self._wait.record(seconds, {"provider": provider, "operation": operation})
