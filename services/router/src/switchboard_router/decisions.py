"""What the router decided for one request, told to the caller and kept in the usage event:
the deployment that answered, its provider and how many attempts it took; and how an attempt's
failure counts against its deployment (a throttle cools it down, anything else trips its breaker)."""

from __future__ import annotations

from switchboard_common.errors import ApiError, RateLimited

from switchboard_router.domain import RequestContext, Target
from switchboard_router.keyring import AllKeysExhausted

PROVIDER_HEADER = "x-switchboard-provider"
DEPLOYMENT_HEADER = "x-switchboard-deployment"
ATTEMPTS_HEADER = "x-switchboard-attempts"


def count_fault(target: Target, exc: ApiError) -> None:
    if isinstance(exc, AllKeysExhausted):
        # The provider's key ring already knows each key's state and answers at once without a
        # call; benching the deployment too would keep it out after a key is added or cools down.
        return
    throttled = isinstance(exc, RateLimited)
    target.deployment.stats.fault(exc.code or exc.error_type, throttled=throttled,
                                  retry_after=exc.retry_after if throttled else None)


def announce(ctx: RequestContext, target: Target, attempts: int) -> None:
    """Response headers sent with the answer's first bytes (the edge passes them on)."""
    ctx.headers.extend(((PROVIDER_HEADER, target.deployment.provider),
                        (DEPLOYMENT_HEADER, target.deployment.name),
                        (ATTEMPTS_HEADER, str(attempts))))
