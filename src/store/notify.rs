//! Wake-ups across machines through PostgreSQL: `NOTIFY` sent with the commit of the
//! transaction that grants or delivers, `LISTEN` on a connection of each server's own.

use std::time::Duration;

use postgres::Config;

use super::postgres::describe;
use super::tls::Connector;
use super::{OnWake, WAKE_CHANNEL};

/// `SELECT pg_notify(...)` for each address, as one batch of statements. Addresses come from
/// the database: quoted as literals, never trusted as SQL.
pub fn notifications(addresses: &[String]) -> String {
    addresses
        .iter()
        .map(|address| {
            let quoted = address.replace('\0', "").replace('\'', "''");
            format!("SELECT pg_notify('{WAKE_CHANNEL}', '{quoted}'); ")
        })
        .collect()
}

/// Starts [`listen`] on a thread of its own; false when no thread can be started.
pub fn spawn_listener(config: &Config, tls: &Connector, on_wake: OnWake) -> bool {
    let (config, tls) = (config.clone(), tls.clone());
    let spawned = std::thread::Builder::new()
        .name("wake-listener".to_owned())
        .spawn(move || listen(&config, &tls, on_wake));
    if let Err(error) = &spawned {
        tracing::warn!(%error, "cannot listen for wake-ups from other machines");
    }
    spawned.is_ok()
}

/// Listens on [`WAKE_CHANNEL`] until the process ends, connecting again (and saying so with
/// `None`) whenever the connection drops.
fn listen(config: &Config, tls: &Connector, on_wake: OnWake) {
    use postgres::fallible_iterator::FallibleIterator;
    let mut pause = Duration::from_millis(200);
    loop {
        let mut client = match tls.connect(config) {
            Ok(client) => client,
            Err(error) => {
                tracing::debug!(error = %describe(&error), "wake listener cannot connect; retrying");
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(error) = client.batch_execute(&format!("LISTEN {WAKE_CHANNEL}")) {
            tracing::debug!(error = %describe(&error), "LISTEN failed; retrying");
            std::thread::sleep(pause);
            continue;
        }
        pause = Duration::from_millis(200);
        on_wake(None);
        let mut notifications = client.notifications();
        let mut waiting = notifications.blocking_iter();
        loop {
            match waiting.next() {
                Ok(Some(notification)) => on_wake(Some(notification.payload())),
                Ok(None) => break,
                Err(error) => {
                    tracing::debug!(error = %describe(&error), "wake listener lost its connection");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_quoted_as_literals() {
        let sql = notifications(&["@a/1".to_owned(), "x'); DROP TABLE locks; --".to_owned()]);
        assert_eq!(
            sql,
            "SELECT pg_notify('mcp_coordinator_wake', '@a/1'); \
             SELECT pg_notify('mcp_coordinator_wake', 'x''); DROP TABLE locks; --'); "
        );
    }
}
