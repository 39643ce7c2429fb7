"""The REST API of ``maas_lifecycle serve`` (docs/lifecycle.md): ``app`` builds the FastAPI
application, ``deps`` holds what routes depend on, and one thin router module per resource calls
the service modules of :mod:`lifecycle`."""
