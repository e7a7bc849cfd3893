"""Who may connect: the users file (auth.users), the authentication conversations
(auth.methods), sign-in tokens (auth.tokens), Databricks tokens (auth.databricks) and which
check each password-type method uses (auth.verifiers)."""
