"""CSV import of customers and orders (SPEC rule 16): reading (encodings),
presets (formats), runner (the job through the crm services)."""
