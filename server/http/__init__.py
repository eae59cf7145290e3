"""The web layer every area shares: authentication and CSRF, the error middleware, request bodies,
security headers, the access log, the login rate limit, the client's address, health probes, the
typed app keys and the page-render helper. No route here knows a domain."""
