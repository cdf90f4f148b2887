"""Every write of the crisis app, one module per subject:
suspensions, incidents (with playbooks and checklists), broadcasts."""
