"""Batch jobs: the background runner (:mod:`.runner`)."""
