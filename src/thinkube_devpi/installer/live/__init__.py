"""Live cluster status as plain snapshots, for the TUI's cluster view and `install status --watch`.

``rows`` turns objects into k9s-like rows, ``sources`` says what is watched, ``watcher`` keeps
the list+watch threads. Nothing here imports textual.
"""
