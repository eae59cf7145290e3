"""The workspace origins: one host per workspace (hosts), the candidate landing page, capability
links, handoffs and entry codes (app), and the proxy to the workspace's jupyter-server."""
