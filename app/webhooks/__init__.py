"""Job callbacks: where they may go (:mod:`.policy`) and their signed,
retried delivery (:mod:`.dispatcher`)."""
