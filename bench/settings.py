"""Bench-only settings: production settings plus the bare endpoints of
bench/urls.py. Production configuration is imported, never changed."""

from config.env import env_int
from config.settings import *  # noqa: F403

DEBUG = False  # never record queries or serve debug pages under load
ROOT_URLCONF = "bench.urls"
# The customer the bare order endpoint attaches its orders to (bench/api_ingest.py).
BENCH_BARE_CUSTOMER_ID = env_int("BENCH_BARE_CUSTOMER_ID", 0)
