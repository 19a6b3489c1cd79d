//! Test-only MCP servers (filled in by the fixture work).

fn main() {}
