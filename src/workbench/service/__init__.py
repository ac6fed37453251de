"""The one door: `Workbench`."""
