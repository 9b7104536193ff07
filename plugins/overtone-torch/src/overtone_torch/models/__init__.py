"""Models: trunks mapping inputs to features of width ``d_out`` (the loss owns the head)."""
