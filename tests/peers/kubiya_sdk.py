"""Kubiya's own Python SDK (``kubiya-sdk``) against the sandbox; run by ``nox -s peers``.

The SDK lists runners and then asks each one's health, five at a time, so it
meets Kubiya's 20-per-10-s window and reads the 429's ``Retry-After`` through
urllib3. It passes when every runner comes back with the health the sandbox
holds (status "unknown" for one that is not reporting) and a manifest URL is
returned. Exit status 0 on success.
"""

from __future__ import annotations

import sys

from kubiya.client import KubiyaClient  # type: ignore[import-not-found]

from runnerhub.sandbox import Sandbox

RUNNERS = 40
UNHEALTHY = 8


def main() -> int:
    """Run the SDK's runner calls against a served sandbox; print what it got."""
    # Windows 10x shorter than Kubiya's, so the SDK's waits take seconds, not minutes.
    sandbox = Sandbox(seed=7, time_scale=10)
    org = sandbox.add_org("kubiya", "peers", runners=RUNNERS, unhealthy=UNHEALTHY)
    (account,) = sandbox.accounts()
    with sandbox.serve_in_thread() as base_url:
        # The SDK joins absolute paths onto its base URL, so it needs the vendor at the root.
        client = KubiyaClient(api_key=account.credentials["api_key"], base_url=base_url)
        runners = client.runners.list()
        # A runner that is not reporting answers 503; the SDK keeps the listing's "unknown".
        expected = {
            name: "unknown" if state == "missing" else org.health_report(name)["status"]
            for name, state in org.health.items()
        }
        wrong = [
            r["name"] for r in runners if r["runner_health"]["status"] != expected.get(r["name"])
        ]
        manifest = client.runners.manifest(runners[0]["name"])
    limited = sandbox.count(status=429)
    print(
        f"kubiya-sdk: listed {len(runners)}/{RUNNERS} runners; health differing from "
        f"the sandbox for {len(wrong)}; "
        f"{limited} answers were 429 and were retried; manifest url: {'url' in manifest}"
    )
    ok = len(runners) == RUNNERS and not wrong and bool(manifest.get("url"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
