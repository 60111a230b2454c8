//! What differs between the operating systems the binary ships on (Linux, macOS, Windows), in
//! one place, so that everything above behaves the same everywhere: the socket a process is
//! woken on, the process table the client lookup walks, this machine's name, and the stdio
//! server's standard streams.
//!
//! Each part tries the platform's best mechanism first and falls back to the next, and the
//! fallbacks serve on Linux too (a socket file or a UDP port where abstract sockets fail, `ps`
//! where `/proc` is missing), so every mechanism but Windows's process table is compiled and
//! tested here on Linux. The `cfg` attributes mark only the calls a platform lacks: abstract
//! sockets on Linux, socket files and `ps` on Unix, the Toolhelp API on Windows.

mod host;
mod process;
pub mod stdio;
mod wake;

pub use host::machine;
pub use process::{Process, Processes};
pub use wake::{listen, poke};
