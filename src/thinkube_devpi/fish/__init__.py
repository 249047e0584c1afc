"""Generated fish functions and completions that wrap the helper commands."""
