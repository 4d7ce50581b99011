"""The quarantine review UI (`mailsift web`): Starlette pages, argon2 logins, server-rendered."""
