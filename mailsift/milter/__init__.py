"""The milter: Postfix hands each message over, mailsift scores it and acts on the score."""
