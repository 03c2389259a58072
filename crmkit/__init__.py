"""The one shared package of the CRM suite.

Settings, database and unit of work, event envelope and schemas, transactional outbox and relay,
idempotent consumers with inbox and dead letters, authentication, problem+json errors, logging and
metrics. Business rules never live here: they belong to the services.
"""
