"""Settings of the gateway (environment prefix ``CRM_GATEWAY_``).

Values every process shares (the token verification key above all) may also be given once with
the suite prefix ``CRM_``, as for the services; the gateway's own prefix wins.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from crmkit import devauth
from crmkit.settings import SuiteSettings


class GatewaySettings(SuiteSettings):
    """Where the upstreams are, how tokens are verified and whether dev tokens are issued."""

    model_config = SettingsConfigDict(env_prefix="CRM_GATEWAY_", extra="ignore")

    port: int = 8000
    upstream_customer: str = "http://127.0.0.1:8001"
    upstream_rating: str = "http://127.0.0.1:8002"
    upstream_assignment: str = "http://127.0.0.1:8003"
    upstream_visits: str = "http://127.0.0.1:8004"
    upstream_notify: str = "http://127.0.0.1:8005"
    upstream_timeout_s: float = 10.0
    upstream_connect_timeout_s: float = 3.0
    upstream_max_connections: int = 200
    upstream_max_keepalive: int = 50
    # Readiness probes and OpenAPI fetches must answer fast: a slow upstream counts as down.
    probe_timeout_s: float = 2.0
    # When false, /readyz answers 200 while some upstream is down (its state is still listed):
    # behind a load balancer one failing service must not take the whole front door out.
    readiness_requires_all_upstreams: bool = True
    # The development token issuer (POST /api/v1/auth/token); disabled in production.
    dev_issuer_enabled: bool = True
    dev_issuer_key_file: str = str(devauth.PRIVATE_KEY)
    dev_token_ttl_s: int = 8 * 3600

    def upstreams(self) -> dict[str, str]:
        """Base URL of every upstream service by name, without a trailing slash."""
        return {
            "customer": self.upstream_customer.rstrip("/"),
            "rating": self.upstream_rating.rstrip("/"),
            "assignment": self.upstream_assignment.rstrip("/"),
            "visits": self.upstream_visits.rstrip("/"),
            "notify": self.upstream_notify.rstrip("/"),
        }
