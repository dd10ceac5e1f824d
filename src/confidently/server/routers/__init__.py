"""One module per resource: classify, adapters (listing and admin), health and metrics."""
