"""Who may connect: the users file (auth.users) and the authentication methods (auth.methods)."""
