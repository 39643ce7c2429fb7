"""Test harnesses of the lifecycle service: real PostgreSQL (:mod:`lifecycle.testing.postgres`)
and real backends started on 127.0.0.1 for one test session, as pytest plugins."""
