//! The proxy Service's name, `mcp-<name>-proxy` (ToolHive's): the operator creates the
//! Service under it, and admission refuses an MCPServer name that would make it too long.

const PREFIX: &str = "mcp-";
const SUFFIX: &str = "-proxy";

/// A Service name is a DNS-1035 label: at most 63 characters.
const MAX_SERVICE_NAME_LENGTH: usize = 63;

/// Longest MCPServer name whose proxy Service name fits.
pub const MAX_SERVER_NAME_LENGTH: usize = MAX_SERVICE_NAME_LENGTH - PREFIX.len() - SUFFIX.len();

/// ToolHive's suffix of an MCPRemoteProxy's Service.
const REMOTE_SUFFIX: &str = "-remote-proxy";

/// Longest MCPRemoteProxy name whose Service name fits.
pub const MAX_REMOTE_PROXY_NAME_LENGTH: usize =
    MAX_SERVICE_NAME_LENGTH - PREFIX.len() - REMOTE_SUFFIX.len();

/// `mcp-<name>-remote-proxy`: the Service clients reach the MCPRemoteProxy called `name`
/// through (ToolHive's name for it).
pub fn remote_proxy_service_name(name: &str) -> String {
    format!("{PREFIX}{name}{REMOTE_SUFFIX}")
}

/// `mcp-<name>-proxy`: the Service clients reach the MCPServer called `name` through.
pub fn proxy_service_name(name: &str) -> String {
    format!("{PREFIX}{name}{SUFFIX}")
}

/// The path clients use on an MCPRemoteProxy: `[endpointPrefix]/sse` for a legacy SSE
/// server, else `[endpointPrefix]/mcp`.
pub fn remote_endpoint_path(proxy: &api::MCPRemoteProxy) -> String {
    use api::remoteproxy::RemoteTransport;
    let prefix = proxy
        .spec
        .endpoint_prefix
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let path = match proxy.spec.transport {
        RemoteTransport::Sse => "sse",
        RemoteTransport::StreamableHttp => "mcp",
    };
    format!("{prefix}/{path}")
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
        let name = "a".repeat(MAX_REMOTE_PROXY_NAME_LENGTH);
        assert_eq!(remote_proxy_service_name(&name).len(), 63);
        assert_eq!(remote_proxy_service_name("gh"), "mcp-gh-remote-proxy");
    }
}
