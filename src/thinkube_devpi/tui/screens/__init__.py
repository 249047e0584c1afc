"""Modal screens: confirmations."""
