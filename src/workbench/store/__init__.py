"""Durable state, and all of its SQL: classifiers, versions, examples, curation, promotion, leases, the doctor."""
