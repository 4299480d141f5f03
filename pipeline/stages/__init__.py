"""The stages, in the order data flows through them: ingest, clean, dedup, validate, split; and figures."""
