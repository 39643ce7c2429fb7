"""``python -m stellar_like.enrichment``: the ``maas_enrich`` command."""

from stellar_like.enrichment.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
