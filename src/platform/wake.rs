//! The socket a process is woken on, and the poke that wakes another.
//!
//! A process listens on the first kind of socket its platform can bind, best first, and
//! stores the socket's address as text in the database, where every process on the same
//! database reads it, older versions included. The address names its kind:
//!
//! - `mcp-session-coordinator/<hex>`: a datagram socket in Linux's abstract namespace (no file
//!   to clean up; it vanishes with the process). The one kind older versions know, so it
//!   keeps their unprefixed form: they still wake us, and we them.
//! - `unix:<path>`: a datagram socket file in a folder only this user can enter (macOS and
//!   other Unixes; Linux where the abstract namespace is unavailable).
//! - `udp:127.0.0.1:<port>@<machine>`: a loopback UDP port (Windows; anywhere else the kinds
//!   above fail). The machine tag keeps a process on another machine sharing the database
//!   from poking whatever listens on the same port number at home.
//!
//! An older process takes any address for an abstract name: a prefixed one names no socket,
//! so its poke fails like a poke of a process that is gone, which it logs and ignores. A
//! process ignores an address of a kind its platform lacks the same way.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};

const ABSTRACT_PREFIX: &str = "mcp-session-coordinator/";
const UNIX_PREFIX: &str = "unix:";
const UDP_PREFIX: &str = "udp:";

/// A bound wake socket and the address others poke it at.
pub struct Listener {
    address: String,
    socket: Socket,
}

enum Socket {
    #[cfg(unix)]
    Unix {
        socket: tokio::net::UnixDatagram,
        /// The socket file to remove when the listener goes (`None` for an abstract name).
        _file: Option<SocketFile>,
    },
    Udp(tokio::net::UdpSocket),
}

impl Listener {
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Waits for the next poke.
    pub async fn recv(&self) -> io::Result<()> {
        let mut buffer = [0u8; 16];
        match &self.socket {
            #[cfg(unix)]
            Socket::Unix { socket, .. } => socket.recv(&mut buffer).await.map(drop),
            Socket::Udp(socket) => loop {
                match socket.recv_from(&mut buffer).await {
                    // Windows reports an earlier send's unreachable port on the next receive;
                    // this socket sends nothing, but a reset is no reason to stop listening.
                    Err(error) if error.kind() == io::ErrorKind::ConnectionReset => continue,
                    received => return received.map(drop),
                }
            },
        }
    }
}

/// Binds the best wake socket this platform has. The kinds are tried in the same order
/// everywhere; a kind the platform lacks fails at once.
pub fn listen() -> io::Result<Listener> {
    let mut failures = Vec::new();
    for (kind, bind) in [
        ("abstract", bind_abstract as fn() -> io::Result<Listener>),
        ("socket file", bind_file),
        ("loopback UDP", bind_udp),
    ] {
        match bind() {
            Ok(listener) => return Ok(listener),
            Err(error) => failures.push(format!("{kind}: {error}")),
        }
    }
    Err(io::Error::other(failures.join("; ")))
}

/// Sends one byte to `address`, whatever its kind.
pub fn poke(address: &str) -> io::Result<()> {
    let sent = if let Some(path) = address.strip_prefix(UNIX_PREFIX) {
        poke_file(path)
    } else if let Some(port) = address.strip_prefix(UDP_PREFIX) {
        poke_udp(port)
    } else if address.starts_with(ABSTRACT_PREFIX) {
        poke_abstract(address)
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a wake address",
        ))
    };
    match sent {
        // A full buffer means wake-ups are already pending there.
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
        other => other,
    }
}

#[cfg(unix)]
fn random_hex() -> io::Result<String> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random).map_err(io::Error::other)?;
    Ok(random.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(target_os = "linux")]
fn abstract_address(name: &str) -> io::Result<std::os::unix::net::SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(target_os = "linux")]
fn bind_abstract() -> io::Result<Listener> {
    let address = format!("{ABSTRACT_PREFIX}{}", random_hex()?);
    let socket = std::os::unix::net::UnixDatagram::bind_addr(&abstract_address(&address)?)?;
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UnixDatagram::from_std(socket)?;
    Ok(Listener {
        address,
        socket: Socket::Unix {
            socket,
            _file: None,
        },
    })
}

#[cfg(not(target_os = "linux"))]
fn bind_abstract() -> io::Result<Listener> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(target_os = "linux")]
fn poke_abstract(address: &str) -> io::Result<()> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    socket
        .send_to_addr(&[1], &abstract_address(address)?)
        .map(drop)
}

#[cfg(not(target_os = "linux"))]
fn poke_abstract(_address: &str) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Removes its socket file when dropped, so a process that ends normally leaves none; those
/// of processes that were killed are removed by the next process to bind.
#[cfg(unix)]
struct SocketFile(std::path::PathBuf);

#[cfg(unix)]
impl Drop for SocketFile {
    fn drop(&mut self) {
        // Already gone is fine: another process found it stale.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The user's runtime folder (`$XDG_RUNTIME_DIR`, private and emptied at logout) or, where
/// there is none (macOS), the temporary folder (macOS's `$TMPDIR` is private to the user too).
/// Both are short enough for socket paths, which may hold at most 103 bytes on macOS.
#[cfg(unix)]
fn bind_file() -> io::Result<Listener> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(std::path::PathBuf::from)
        .filter(|path| path.is_absolute())
        .unwrap_or_else(std::env::temp_dir);
    bind_file_in(&base)
}

#[cfg(not(unix))]
fn bind_file() -> io::Result<Listener> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(unix)]
fn bind_file_in(base: &std::path::Path) -> io::Result<Listener> {
    let folder = private_folder(base)?;
    remove_stale(&folder);
    let path = folder.join(random_hex()?);
    let address = format!(
        "{UNIX_PREFIX}{}",
        path.to_str()
            .ok_or_else(|| io::Error::other("the socket path is not UTF-8"))?
    );
    let socket = std::os::unix::net::UnixDatagram::bind(&path)?;
    let file = SocketFile(path);
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UnixDatagram::from_std(socket)?;
    Ok(Listener {
        address,
        socket: Socket::Unix {
            socket,
            _file: Some(file),
        },
    })
}

/// This user's folder of wake sockets under `base`, made if missing. One that another user
/// made, or that others may enter, is refused: whoever controls it could take our pokes.
#[cfg(unix)]
fn private_folder(base: &std::path::Path) -> io::Result<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = rustix::process::geteuid().as_raw();
    let folder = base.join(format!("mcp-session-coordinator-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&folder) {
        Err(error) if error.kind() != io::ErrorKind::AlreadyExists => return Err(error),
        _ => {}
    }
    let found = std::fs::symlink_metadata(&folder)?;
    if !found.is_dir() || found.uid() != uid || found.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a folder private to this user", folder.display()),
        ));
    }
    Ok(folder)
}

/// Removes the socket files of processes that ended without removing theirs (killed,
/// crashed): nothing listens on them, so connecting is refused. Connecting sends nothing, so
/// live processes are not woken.
#[cfg(unix)]
fn remove_stale(folder: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let socket = entry.file_type().is_ok_and(|kind| kind.is_socket());
        let refused = || {
            std::os::unix::net::UnixDatagram::unbound()
                .and_then(|probe| probe.connect(&path))
                .is_err_and(|error| error.kind() == io::ErrorKind::ConnectionRefused)
        };
        if socket && refused() {
            // Another process may have removed it first.
            let _ = std::fs::remove_file(&path);
        }
    }
}

#[cfg(unix)]
fn poke_file(path: &str) -> io::Result<()> {
    let socket = std::os::unix::net::UnixDatagram::unbound()?;
    socket.set_nonblocking(true)?;
    socket.send_to(&[1], path).map(drop)
}

#[cfg(not(unix))]
fn poke_file(_path: &str) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// A short digest of this machine's name: addresses are stored in a database that other
/// machines may share, so the name itself stays out.
fn machine_tag() -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(super::machine().as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn bind_udp() -> io::Result<Listener> {
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let port = socket.local_addr()?.port();
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(socket)?;
    Ok(Listener {
        address: format!(
            "{UDP_PREFIX}{}:{port}@{}",
            Ipv4Addr::LOCALHOST,
            machine_tag()
        ),
        socket: Socket::Udp(socket),
    })
}

/// Only to a loopback port of this machine: an address read from a shared database must
/// never send packets elsewhere.
fn poke_udp(address: &str) -> io::Result<()> {
    let invalid = |why: &str| io::Error::new(io::ErrorKind::InvalidInput, why.to_owned());
    let (port, machine) = address
        .split_once('@')
        .ok_or_else(|| invalid("no machine tag"))?;
    if machine != machine_tag() {
        return Err(invalid("another machine's port"));
    }
    let target: SocketAddr = port
        .parse()
        .map_err(|_| invalid("not an IP address and port"))?;
    if !target.ip().is_loopback() {
        return Err(invalid("not a loopback address"));
    }
    let socket = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    socket.set_nonblocking(true)?;
    socket.send_to(&[1], target).map(drop)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn heard(listener: &Listener) {
        tokio::time::timeout(Duration::from_secs(5), listener.recv())
            .await
            .expect("woken in time")
            .expect("the socket still listens");
    }

    #[tokio::test]
    async fn every_kind_this_platform_has_hears_its_poke() {
        let best = listen().expect("some wake socket binds");
        poke(best.address()).expect("poke the best kind");
        heard(&best).await;

        let udp = bind_udp().expect("loopback UDP binds everywhere");
        assert!(
            udp.address().starts_with("udp:127.0.0.1:"),
            "{}",
            udp.address()
        );
        poke(udp.address()).expect("poke a UDP port");
        heard(&udp).await;

        #[cfg(target_os = "linux")]
        assert!(
            best.address().starts_with(ABSTRACT_PREFIX),
            "{}",
            best.address()
        );
        #[cfg(unix)]
        {
            let base = tempfile::tempdir().expect("a temporary folder");
            let file = bind_file_in(base.path()).expect("a socket file binds");
            assert!(file.address().starts_with("unix:/"), "{}", file.address());
            poke(file.address()).expect("poke a socket file");
            heard(&file).await;
        }
    }

    #[tokio::test]
    async fn addresses_that_cannot_be_ours_are_refused_without_sending() {
        for address in [
            "",
            "tcp:127.0.0.1:80",
            "udp:127.0.0.1:9",
            "udp:127.0.0.1:9@000000000000",
            &format!("udp:192.0.2.1:9@{}", machine_tag()),
            &format!("udp:localhost:9@{}", machine_tag()),
        ] {
            assert!(poke(address).is_err(), "{address:?} was poked");
        }
        // Processes that are gone.
        assert!(poke("unix:/nonexistent/mcp-session-coordinator/gone").is_err());
        #[cfg(target_os = "linux")]
        assert!(poke("mcp-session-coordinator/gone").is_err());
    }

    /// An older process pokes every address as an abstract name: a new kind's address names
    /// no abstract socket, so its poke fails (which it logs and ignores) rather than
    /// reaching anything.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn older_processes_fail_to_poke_the_new_kinds_harmlessly() {
        let base = tempfile::tempdir().expect("a temporary folder");
        let file = bind_file_in(base.path()).expect("a socket file binds");
        let udp = bind_udp().expect("loopback UDP binds");
        for address in [file.address(), udp.address()] {
            assert!(poke_abstract(address).is_err(), "{address}");
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn socket_files_are_private_and_removed_by_their_owner_or_the_next_process() {
        use std::os::unix::fs::PermissionsExt;
        let base = tempfile::tempdir().expect("a temporary folder");
        let live = bind_file_in(base.path()).expect("bind");
        let live_path = std::path::PathBuf::from(&live.address()[UNIX_PREFIX.len()..]);
        let folder = live_path.parent().expect("a folder").to_owned();
        let mode = std::fs::metadata(&folder)
            .expect("the folder")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);

        // A process killed before it could remove its file leaves one nobody listens on.
        let stale = folder.join("killed");
        drop(std::os::unix::net::UnixDatagram::bind(&stale).expect("bind"));
        assert!(stale.exists());
        let next = bind_file_in(base.path()).expect("bind");
        assert!(!stale.exists(), "the stale file was removed");
        assert!(live_path.exists(), "a live process's file stays");
        poke(live.address()).expect("and it still hears");
        heard(&live).await;

        drop(live);
        assert!(!live_path.exists(), "a listener removes its own file");
        drop(next);
        assert_eq!(std::fs::read_dir(&folder).expect("list").count(), 0);

        // A folder others may enter is refused, and another kind is tried instead.
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        assert!(bind_file_in(base.path()).is_err());
    }

    /// macOS allows socket paths of 103 bytes: a longer one fails to bind, and `listen`
    /// falls back to the next kind instead of going without.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_socket_path_too_long_fails_to_bind() {
        let base = tempfile::tempdir().expect("a temporary folder");
        let deep = base.path().join("d".repeat(120));
        std::fs::create_dir(&deep).expect("a deep folder");
        assert!(bind_file_in(&deep).is_err());
    }
}
