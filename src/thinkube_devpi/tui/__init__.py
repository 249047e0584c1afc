"""thinkube-devpi-tui: the guided setup."""
