"""Message analysis: one parse of a message into the facts rules and the tokenizer use."""
