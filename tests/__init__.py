"""PyLoop's conformance suite: every test runs on stock asyncio and on every pyloop phase."""
