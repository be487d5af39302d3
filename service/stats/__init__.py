"""Statistics for analysts: disclosure control (cell-key rounding, suppression) and hotspot scoring."""
