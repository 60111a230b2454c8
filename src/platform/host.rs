//! This machine's name, for telling one machine's process ids from another's in a database
//! that several share: the host name with the systemd machine id where there is one
//! (containers and VMs cloned from one image often share the id, rarely the name too).

use std::sync::OnceLock;

/// Read once per process: a hook asks for it on every edit.
pub fn machine() -> &'static str {
    static MACHINE: OnceLock<String> = OnceLock::new();
    MACHINE.get_or_init(|| {
        let parts: Vec<String> = [host_name(), std::fs::read_to_string("/etc/machine-id").ok()]
            .into_iter()
            .flatten()
            .map(|text| text.trim().to_owned())
            .filter(|part| !part.is_empty())
            .collect();
        if parts.is_empty() {
            "unknown".to_owned()
        } else {
            parts.join("/")
        }
    })
}

/// Linux's `/proc` first: the text older versions recorded, so their sessions still match.
fn host_name() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(system_host_name)
}

#[cfg(unix)]
fn system_host_name() -> Option<String> {
    Some(
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned(),
    )
}

#[cfg(windows)]
fn system_host_name() -> Option<String> {
    std::env::var("COMPUTERNAME").ok()
}

#[cfg(not(any(unix, windows)))]
fn system_host_name() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_has_a_name_and_linux_keeps_the_one_it_had() {
        let name = machine();
        assert!(!name.is_empty() && name != "unknown", "{name}");
        if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            assert!(name.starts_with(host.trim()), "{name}");
        }
        #[cfg(unix)]
        {
            let uname = system_host_name().expect("uname has a node name");
            assert!(name.contains(uname.trim()), "{name} holds {uname}");
        }
    }
}
