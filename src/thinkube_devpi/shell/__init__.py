"""Helper commands a developer uses every day against the devpi index."""
