"""Domain operations on the shop's write model; callers own the transaction."""
