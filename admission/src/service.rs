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

/// The path clients use on the proxy: `[endpointPrefix]/sse` when it speaks legacy SSE
/// (an `sse` server, or a stdio one with `proxyMode: sse`), else `[endpointPrefix]/mcp`.
pub fn endpoint_path(server: &api::MCPServer) -> String {
    use api::mcpserver::{ProxyMode, Transport};
    let sse = match server.spec.transport {
        Transport::Stdio => server.spec.proxy_mode == ProxyMode::Sse,
        Transport::Sse => true,
        Transport::StreamableHttp => false,
    };
    let prefix = server
        .spec
        .endpoint_prefix
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    format!("{prefix}/{}", if sse { "sse" } else { "mcp" })
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
