"""The API gateway: one front door for the five services.

It verifies bearer tokens, routes ``/api/v1/...`` by path prefix to the owning service, merges the
services' OpenAPI documents into one, reports the readiness of every upstream and, in the embedded
default, issues development tokens.
"""
