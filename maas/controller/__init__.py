"""The controller: keeps the instances of every model in line with the desired state.

- :mod:`.desired` — the desired state per (name, version), stored under ``<stateRoot>/models``.
- :mod:`.intake` — applies queue requests to the desired state, one ZooKeeper transaction each.
- :mod:`.plan` — the pure reconcile function ``plan(desired, actual, health, now) -> actions``.
- :mod:`.executor` — applies actions through the launcher and records failures.
- :mod:`.service` — the loop that ties them together under leader election.
"""
