"""Shared fixtures. Fakes live in tests/fakes and are imported as `fakes.*`."""
