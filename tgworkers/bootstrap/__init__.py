"""The layer above the engine that wires a process: settings → engine parts, built once."""
