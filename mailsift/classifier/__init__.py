"""Bayes: the tokenizer, the classifier maths and the token stores it reads and trains."""
