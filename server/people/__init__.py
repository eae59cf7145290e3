"""People and their access: the login and admin pages and API (routes), and the accounts domain
they stand on (accounts, credentials, passwords), which is web-free."""
