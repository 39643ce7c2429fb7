"""The enrichment pipeline: Stellar expressions applied to a stream of JSON events, with the model
calls of many events micro-batched into one request per model.

Quick use::

    from enrichment import EnrichmentPipeline, Line, parse_config

    config = parse_config({"enrichments": {"domain": "DOMAIN_REMOVE_SUBDOMAINS(URL_TO_HOST(url))"}})
    pipeline = EnrichmentPipeline(config, gateway)          # gateway: a ModelGateway, or None
    pipeline.enrich([{"url": "http://www.example.com/a"}])  # [{"url": …, "domain": "example.com"}]

- :mod:`.config` — the config shapes (ours and Metron's), compiled once: :func:`load_config`,
  :func:`parse_config`, :class:`EnrichmentConfig`, :class:`ConfigError`;
- :mod:`.pipeline` — :class:`EnrichmentPipeline` (lines or events in, enriched events and error
  records out);
- :mod:`.batching` — how model calls are collected, batched and replayed;
- :mod:`.sources` — reading stdin, files and directories (following them) and grouping lines into
  batches by size and linger;
- :mod:`.service` and :mod:`.cli` — the ``maas_enrich`` command.
"""

from __future__ import annotations

from enrichment.batching import BatchModelGateway
from enrichment.config import Assignment, ConfigError, EnrichmentConfig, load_config, parse_config
from enrichment.pipeline import EnrichmentPipeline, Failure, Line, Outcome, PipelineStats

__all__ = [
    "Assignment",
    "BatchModelGateway",
    "ConfigError",
    "EnrichmentConfig",
    "EnrichmentPipeline",
    "Failure",
    "Line",
    "Outcome",
    "PipelineStats",
    "load_config",
    "parse_config",
]
