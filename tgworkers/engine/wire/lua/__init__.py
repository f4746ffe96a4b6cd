"""The engine's Lua scripts, one per file (loaded by `tgworkers.engine.wire.scripts`)."""
