"""The playbooks screens of the crisis admin."""
