"""The operator console: server-rendered pages (Jinja2) with htmx, behind a session.

Served by the same app as the admin API, on `/ui/` (and `/`). Pages call the same
engine services as the API and the CLI; there is no second implementation of any
action. Everything the browser runs is vendored in the package (htmx, one CSS
file); nothing is fetched from a CDN and nothing is built.
"""
