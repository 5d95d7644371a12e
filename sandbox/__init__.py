"""The embedded AWS used by ``delegate sandbox``, ``delegate demo`` and the tests: a moto
server in this process plus a simulator thread that makes ECS services behave like ECS
(deployments, rolling replacement, events, the circuit breaker, draining).

Failures are chosen by the container image, so a test or a demo steers them from outside
the process; see ``sandbox/README.md`` for the conventions.
"""

from sandbox.server import DEFAULT_REGION, Network, Sandbox, client, seed_network

__all__ = ["DEFAULT_REGION", "Network", "Sandbox", "client", "seed_network"]
