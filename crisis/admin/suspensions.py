"""The suspensions screens of the crisis admin."""
