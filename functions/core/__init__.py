"""Pure core: hashing, statistics, state machines, ledger hashing.

Nothing under this package may import a cloud client (google.cloud, firebase_admin,
functions_framework); a unit test enforces it so the core stays readable and testable alone.
"""
