"""The wire: what the engine keeps in Redis and how it speaks to it.

Key names and entry fields (`keys`), the job envelope and its codecs (`envelope`), the Lua
scripts, their typed wrappers and the items they take and answer (`scripts`, `script_items`,
`lua/`), connections (`connection`, `cluster_client`) and the typed XRANGE (`streams`). The
bottom of the engine: it imports no other part of it, so the wire format can be read
(docs/wire-format.md) without the runtime.
"""
