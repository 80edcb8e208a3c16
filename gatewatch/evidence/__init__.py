"""Session verdict and evidence bundle (``gatewatch evidence``)."""
