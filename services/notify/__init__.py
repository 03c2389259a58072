"""Notify service: templates, messages and consents."""
