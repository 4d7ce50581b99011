"""Quarantine: where held messages are kept, reviewed, released or learned from."""
