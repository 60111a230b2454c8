//! `token add | list | revoke`: the access tokens of the people and agents who use a shared
//! server.

use std::fmt::Write as _;

use super::table::{Cell, Paint, Table, ago, color_wanted};
use super::{CliError, show};
use crate::config::Database;
use crate::coordinator::Coordinator;
use crate::flags::TokenCommand;

pub fn run(
    database: &Database,
    command: &TokenCommand,
    open: &dyn Fn() -> Result<Coordinator, CliError>,
    read: &dyn Fn() -> Result<Coordinator, CliError>,
) -> Result<String, CliError> {
    match command {
        TokenCommand::Add { name, output } => {
            // Adding the first token is how a team sets up its server: the database may not
            // exist yet, and is made here.
            let issued = database.coordinator()?.add_token(name)?;
            show(&issued, output, |issued| {
                format!(
                    "{}\n\nThe token for {}: give it to them now, it is not shown again (the database \
                     keeps only its hash). Their client sends it as the header \
                     Authorization: Bearer TOKEN; the dashboard takes it once as /?token=TOKEN.\n",
                    issued.token, issued.name
                )
            })
        }
        TokenCommand::List { output } => {
            let coordinator = read()?;
            let tokens = coordinator.tokens()?;
            let now = coordinator.now();
            show(&tokens, output, |tokens| {
                if tokens.is_empty() {
                    return "No tokens; add one with `token add NAME`.\n".to_owned();
                }
                let mut table = Table::new(&["NAME", "ADDED", "STATE"]);
                for token in tokens {
                    let state = match token.revoked_at {
                        None => Cell::new("works", Paint::Green),
                        Some(at) => Cell::new(format!("revoked {}", ago(now, at)), Paint::Dim),
                    };
                    table.row(vec![
                        token.name.as_str().into(),
                        ago(now, token.created_at).into(),
                        state,
                    ]);
                }
                table.render(color_wanted())
            })
        }
        TokenCommand::Revoke { name, output } => {
            let revoked = open()?.revoke_token(name)?;
            show(&revoked, output, |revoked| {
                let mut text = String::new();
                let _ = writeln!(
                    text,
                    "Revoked {}'s token: servers refuse it from its next request and close its \
                     open connections within a second. Their sessions are swept with their locks \
                     after the session timeout, or end them now with `end-session`.",
                    revoked.name
                );
                text
            })
        }
    }
}
