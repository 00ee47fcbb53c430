"""The chat's rules as pure functions: plain values in, values or a ChatError out; no I/O,
no request, no database. Tested with tables (tests/test_rules_*.py)."""
