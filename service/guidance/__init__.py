"""Guidance: which meldcode step to consider next and which reporting routes apply to a signal (advice, never a
decision), from a versioned data file beside the taxonomy; a municipality's own routes may replace the file's."""
