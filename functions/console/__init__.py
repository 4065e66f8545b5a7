"""The web console: server-rendered pages over the same API routes, roles and rules."""
