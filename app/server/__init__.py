"""The county sync service (network transport for the same bundles as the USB path).

- `protocol`: paths, headers, the signed fetch request, report <-> JSON (stdlib + cryptography).
- `app`: the Starlette application (imported only by `jiandang serve`).
- `client`: the laptop side of `jiandang sync now` and 立即同步 (stdlib http.client only).
- `tls`: a self-signed certificate for the county's machine (`jiandang tls-cert`).

The wire protocol is written down in docs/serve.md.
"""
