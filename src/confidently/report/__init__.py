"""Reports: charts and tables of how well a classifier's confidence can be trusted."""
