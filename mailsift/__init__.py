"""mailsift: a spam filter for Postfix with SpamAssassin-style rules and a shared Bayes classifier."""

__version__ = "0.1.0"
