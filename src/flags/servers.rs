//! The HTTP server's and the dashboard's own flags.

use std::net::SocketAddr;

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct Serve {
    /// Serve MCP over Streamable HTTP at /mcp, and the dashboard at /, on this address
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7420")]
    pub http: SocketAddr,
    /// Most MCP connections open at once (each holds about 60 KB); more are refused with 503 until idle ones close
    #[arg(long = "max-mcp-connections", value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_mcp_connections: u32,
    #[command(flatten)]
    pub access: Access,
}

#[derive(Debug, Clone, Args)]
pub struct Dashboard {
    /// Serve the dashboard on this address
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7421")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub access: Access,
}

/// Who may use a server that listens on the network.
#[derive(Debug, Clone, Args)]
pub struct Access {
    /// Token every request must carry (Authorization: Bearer TOKEN; the dashboard: open /?token=TOKEN once). Required when the address is not loopback; at least 32 characters
    #[arg(
        long,
        env = "MCP_COORDINATOR_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Another name clients reach this server by (a DNS name or IP; repeatable). Loopback names and the bound address are always accepted; any other Host header gets 403
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// A web origin besides this server's own whose pages may call it (scheme://host[:port]; repeatable)
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
    /// Most connections open at once; at the limit, the oldest connection that never showed the token is closed [default: three quarters of the open-file limit]
    #[arg(long = "max-connections", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
}
