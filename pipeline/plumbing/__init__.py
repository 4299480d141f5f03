"""Plumbing every stage shares: I/O, params, the article schema, progress, locks, the stage command."""
