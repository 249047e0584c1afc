"""thinkube-devpi: install DevPi on a thinkube cluster and use it every day."""

__version__ = "0.1.0"
