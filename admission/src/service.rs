//! The proxy Service's name, `mcp-<name>-proxy` (ToolHive's): the operator creates the
//! Service under it, and admission refuses an MCPServer name that would make it too long.

const PREFIX: &str = "mcp-";
const SUFFIX: &str = "-proxy";

/// A Service name is a DNS-1035 label: at most 63 characters.
const MAX_SERVICE_NAME_LENGTH: usize = 63;

/// Longest MCPServer name whose proxy Service name fits.
pub const MAX_SERVER_NAME_LENGTH: usize = MAX_SERVICE_NAME_LENGTH - PREFIX.len() - SUFFIX.len();

/// `mcp-<name>-proxy`: the Service clients reach the MCPServer called `name` through.
pub fn proxy_service_name(name: &str) -> String {
    format!("{PREFIX}{name}{SUFFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_server_name_gives_a_63_character_service_name() {
        let name = "a".repeat(MAX_SERVER_NAME_LENGTH);
        assert_eq!(proxy_service_name(&name).len(), 63);
        assert_eq!(proxy_service_name("fetch"), "mcp-fetch-proxy");
    }
}
