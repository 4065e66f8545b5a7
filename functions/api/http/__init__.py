"""The HTTP plumbing every API function shares: routing, roles, bodies, responses, errors,
access logs and the OpenAPI document, one concern per module (`functions.api.router` re-exports
the names route modules use)."""
