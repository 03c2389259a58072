"""The CRM suite's services: each owns its database and talks to the others by REST and events."""
