"""One Screen per view (the App's modes: phases, cluster, config; base.py is what they share),
and the modal screens (confirmations, help)."""
