"""The incidents screens of the crisis admin."""
