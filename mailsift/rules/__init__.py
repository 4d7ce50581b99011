"""The rules engine: SpamAssassin-style rule files, Python checks, and the shipped ruleset."""
