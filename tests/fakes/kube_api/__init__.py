"""A fake kube-apiserver for tests, as a package.

``server`` serves HTTP and keeps the objects; ``model`` names the resource types it serves;
``errors`` words Status errors as the real server does; ``selectors``, ``fields`` (managedFields,
server-side apply, patches) and ``schema`` (kubernetes-validate) are what it enforces. What the
cluster's controllers would do lives in :mod:`fakes.controllers`; ``chaos`` injects the faults a
real network and API server produce (a seeded fraction of requests).
"""

from fakes.kube_api.chaos import Chaos
from fakes.kube_api.schema import schema_errors
from fakes.kube_api.server import FakeKubeAPI, RequestRecord, iter_watch_lines

__all__ = ["Chaos", "FakeKubeAPI", "RequestRecord", "iter_watch_lines", "schema_errors"]
