"""Wrong implementations per lab: each must lose points in the cells it names."""
