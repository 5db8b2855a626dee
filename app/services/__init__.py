"""Use cases on top of the store: household documents, demo data, and (later) sync, printing, tables."""
