"""The enrichment package's exception tree: every error raised by :mod:`enrichment` (the
pipeline, its config and the MaaS model gateway) derives from :class:`EnrichmentError`, which
knows its ``maas_enrich`` exit code; the CLI translates errors in one place."""

from __future__ import annotations


class EnrichmentError(Exception):
    """Base of every enrichment error."""

    exit_code: int = 1
