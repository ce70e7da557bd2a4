"""Reports: the run table, compare, data info, the gate, TREC export, plots, and the one formatting helper."""
