//! The stdio server's standard streams as async reader and writer, read and written on the
//! runtime's own thread wherever the platform allows.
//!
//! rmcp's `stdio_pipes` does that for pipes (Codex, the Python and Rust SDKs) on Linux. Node
//! clients (Claude Code, Gemini CLI, Copilot CLI) start servers through libuv, which connects
//! the standard streams with Unix socket pairs instead; rmcp reads those through Tokio's
//! blocking stdin and stdout, which hand every read and write to a blocking thread and back. Here a socket is read and written on the
//! runtime's reactor.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use rmcp::transport::io::{StdioReader, StdioWriter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Standard input, as one of the kinds above.
pub enum Input {
    Rmcp(StdioReader),
    #[cfg(unix)]
    Socket(tokio::net::UnixStream),
}

/// Standard output, as one of the kinds above.
pub enum Output {
    Rmcp(StdioWriter),
    #[cfg(unix)]
    Socket(tokio::net::UnixStream),
}

/// The standard streams; must be called inside the runtime.
pub fn streams() -> (Input, Output) {
    #[cfg(unix)]
    if let Some((input, output)) = socket::standard_streams() {
        tracing::debug!("stdio: socket pair, read and written without blocking");
        return (Input::Socket(input), Output::Socket(output));
    }
    let (input, output) = rmcp::transport::stdio_pipes();
    (Input::Rmcp(input), Output::Rmcp(output))
}

impl AsyncRead for Input {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Input::Rmcp(input) => Pin::new(input).poll_read(cx, buf),
            #[cfg(unix)]
            Input::Socket(socket) => Pin::new(socket).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Output {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Output::Rmcp(output) => Pin::new(output).poll_write(cx, buf),
            #[cfg(unix)]
            Output::Socket(socket) => Pin::new(socket).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Output::Rmcp(output) => Pin::new(output).poll_flush(cx),
            #[cfg(unix)]
            Output::Socket(socket) => Pin::new(socket).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Output::Rmcp(output) => Pin::new(output).poll_shutdown(cx),
            #[cfg(unix)]
            Output::Socket(socket) => Pin::new(socket).poll_shutdown(cx),
        }
    }
}

#[cfg(unix)]
mod socket {
    use std::io;
    use std::os::fd::{AsFd, BorrowedFd};
    use std::os::unix::net::UnixStream;

    /// Standard input and output when both are sockets.
    pub fn standard_streams() -> Option<(tokio::net::UnixStream, tokio::net::UnixStream)> {
        let input = open(io::stdin().as_fd())?;
        let output = open(io::stdout().as_fd())?;
        Some((input, output))
    }

    /// A second descriptor of `fd`, registered with the reactor, when `fd` is a stream socket.
    /// Non-blocking mode belongs to the socket's open description, which this process's fds 0
    /// and 1 share, and nothing else in the process reads or writes them: the server's output
    /// is its protocol alone, and the programs it runs (git, ps) get their own streams.
    fn open(fd: BorrowedFd<'_>) -> Option<tokio::net::UnixStream> {
        let stat = rustix::fs::fstat(fd).ok()?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::Socket {
            return None;
        }
        let socket = UnixStream::from(fd.try_clone_to_owned().ok()?);
        socket.set_nonblocking(true).ok()?;
        tokio::net::UnixStream::from_std(socket).ok()
    }
}
