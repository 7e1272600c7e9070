"""fedimpute_shared: what every FedImpute service has in common, and nothing else.

Public modules (import from them directly):

- ``config``        ServiceSettings (pydantic-settings) with the production secret guard
- ``app``           create_service_app(): errors, middleware, /health, /ready, /metrics, lifespan
- ``db``            engine/sessionmaker, SessionDep, session_scope, MetaData naming, mixins
- ``deps``          from_state(): lifespan resources as typed dependencies
- ``migrations``    Alembic env.py body and upgrade_to_head()
- ``problems``      RFC 9457 errors (ProblemError and its subclasses) and their handlers
- ``auth``          JWKS-verified tokens: CurrentUser, ServiceCaller, require_roles/scopes
- ``permissions``   Role and Scope names, default role permissions
- ``http``          create_http_client(), ServiceTokenProvider, ServiceTokenAuth
- ``pagination``    Page, page_params, paginate() with signed cursors, CodecDep
- ``events``        versioned domain events and the transactional outbox
- ``urls``          outbound URL safety (no private/loopback/metadata targets)
- ``logs``          JSON logs with request ids and secret redaction
- ``observability`` request-id/metrics/access-log middleware, Metrics
- ``health``        readiness checks
- ``testing``       pytest helpers: Postgres databases, Redis, token issuer with a JWKS server

Exceptions all derive from ``problems.ProblemError`` (HTTP errors) or are documented where raised
(``auth.TokenError``, ``config.DefaultSecretError``, ``urls.UnsafeURLError``).
"""

__version__ = "0.1.0"
