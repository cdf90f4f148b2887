"""Reads for the manager's figures: one module per page."""
