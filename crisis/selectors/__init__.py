"""Every non-trivial read of the crisis app, one module per subject."""
