"""``python -m enrichment``: the ``maas_enrich`` command."""

from enrichment.cli import main

if __name__ == "__main__":  # pragma: no cover
    main()
