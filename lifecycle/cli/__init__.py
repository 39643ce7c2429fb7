"""Command-line programs: ``service`` (``maas_lifecycle``) and ``client`` (``maas_model``)."""
