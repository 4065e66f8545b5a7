"""Local development: emulator harness, the all-functions router, the demo. Never deployed."""
