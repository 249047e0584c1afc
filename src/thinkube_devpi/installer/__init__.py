"""The install, phase by phase, as plain Python. Never imports textual or the TUI."""
