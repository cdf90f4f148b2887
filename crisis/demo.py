"""Demo data of the crisis app (see crm/management/commands/demo_data.py):
one open incident with its checklist, and a lifted suspension with its
notices. Each subject's steps live beside its services."""

from crisis import demo_broadcasts, demo_incidents, demo_suspensions

DEMO_STEPS = [*demo_broadcasts.STEPS, *demo_suspensions.STEPS, *demo_incidents.STEPS]
