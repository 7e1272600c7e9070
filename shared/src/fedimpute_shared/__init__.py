"""fedimpute_shared: what every FedImpute service has in common, and nothing else.

Public modules (import from them directly; each lists its public names in ``__all__``, and
anything else, or any module starting with ``_``, is private):

- ``fleet``         the fleet table: every service's name, package, port, database, URL variable
- ``config``        ServiceSettings (pydantic-settings) with the production secret guard;
                    ListSetting (JSON or comma lists); validated_copy()
- ``app``           create_service_app(): errors, middleware, body limit, /health, /ready,
                    /metrics, /docs, lifespan, background tasks, outbox relay; service_cli()
- ``tasks``         BackgroundTasks: periodic and long-running background work, restarts,
                    advisory-lock "one replica does it"
- ``outbox``        OutboxRelay: outbox rows to the Redis stream ``fedimpute:events``
- ``streams``       StreamConsumer: a consumer group on the event stream (claims, dead letters,
                    Redis restarts) and the bounded reader of one entry
- ``events``        versioned domain events, the outbox table mixin and add_to_outbox()
- ``db``            engine/sessionmaker, SessionDep, session_scope, advisory_lock, utcnow,
                    MetaData naming, mixins
- ``clock``         the replaceable clock utcnow() and background sleeps read
- ``deps``          from_state(): lifespan resources as typed dependencies; SessionmakerDep,
                    TasksDep
- ``migrations``    Alembic env.py body and upgrade_to_head()
- ``problems``      RFC 9457 errors (ProblemError and its subclasses) and their handlers
- ``body_limit``    the request-body limit and streams_body for routes that stream
- ``text``          NUL-safe text types for request schemas (SafeInput, Line, NoNul...)
- ``auth``          JWKS-verified tokens: CurrentUser, ServiceCaller, require_roles/scopes
- ``permissions``   Role and Scope names, default role permissions
- ``http``          create_http_client(), ServiceTokenProvider, ServiceTokenAuth
- ``transport``     PooledTransport: the httpx transport with O(1) connection reuse
- ``urls``          outbound URL safety: check_outbound_url, resolve_allowed, GuardedTransport
- ``pagination``    Page, page_params, paginate() with signed cursors, CodecDep
- ``logs``          JSON logs with request ids and secret redaction
- ``observability`` request-id/metrics/access-log middleware, Metrics
- ``health``        readiness checks
- ``docs``          /docs and /redoc with assets from an installed package (no CDN)
- ``sealed``        one-time secrets sealed to the notification service's public key
- ``context``       the request id and user id of the current request (contextvars)
- ``embedded``      real PostgreSQL and Redis started under var/ (``make up``, tests)
- ``testing``       pytest helpers: Postgres databases, Redis, token issuer with a JWKS server,
                    a manual clock, the shared fixtures (``testing.pytest_plugin``)

Exceptions all derive from ``problems.ProblemError`` (HTTP errors) or are documented where raised
(``auth.TokenError``, ``config.DefaultSecretError``, ``urls.UnsafeURLError``).
"""

import sys

__version__ = "0.1.0"

# httpx's package imports its command-line client (``httpx._main``, with rich, pygments and
# click: ~6 MB in every process) whenever those are installed, as they are in the development
# environment (schemathesis brings rich). No service runs that client: marked absent, httpx
# takes its own fallback, as in the production images where rich is not installed. This runs
# before any module of this package imports httpx.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
