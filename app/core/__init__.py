"""Service plumbing: settings, state and lifespan, errors, limits, metrics."""
