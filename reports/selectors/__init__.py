"""Reads for the reports: aggregate SQL only, never a loop over inquiries."""
