"""Tests of the Stellar-like expression language (stellar_like)."""
