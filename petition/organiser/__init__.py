"""Organiser workspace (accounts, editing, dashboards come with the organiser issue)."""
