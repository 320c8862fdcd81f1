"""CPython 3.11's own test_asyncio tests, run on stock asyncio and on every pyloop phase."""
