"""What operators see: metrics (and, with them, the logs)."""
