"""Training: reading messages to learn (files, mbox, Maildir, stdin) and the learn/eval commands."""
