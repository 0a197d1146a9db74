"""Personal data and secrets: presidio's pattern recognizers and ours, offline."""
